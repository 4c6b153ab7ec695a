-- What a custom or fine-tuned model was made from: {"base_model": …, "tuned_on": …}.
ALTER TABLE endpoints ADD COLUMN lineage_json TEXT;

-- A cost recomputation may cover a range that ends before now (NULL: up to when it ran).
ALTER TABLE recomputations ADD COLUMN until_ms INTEGER;
