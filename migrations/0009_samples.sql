-- The sample project: what `demo load` created, so `demo remove` takes exactly that away. A
-- sample prompt's versions may be deleted with it; every other version stays immutable.

CREATE TABLE samples (
    kind TEXT    NOT NULL,
    id   INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);

DROP TRIGGER prompt_versions_are_kept;
CREATE TRIGGER prompt_versions_are_kept BEFORE DELETE ON prompt_versions
WHEN NOT EXISTS (SELECT 1 FROM samples WHERE kind = 'prompt' AND id = OLD.prompt_id)
BEGIN
    SELECT RAISE(ABORT, 'prompt versions are immutable');
END;
