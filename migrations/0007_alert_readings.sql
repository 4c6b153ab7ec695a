-- An alert's reading and threshold stay exact where they are money: integer pico-USD (budgets:
-- USD spent; cost spikes: USD per 1,000 tokens). `value` and `threshold` keep rates only.
ALTER TABLE alerts ADD COLUMN value_pico INTEGER;
ALTER TABLE alerts ADD COLUMN threshold_pico INTEGER;
UPDATE alerts SET value_pico = CAST(round(value * 1e12) AS INTEGER),
                  threshold_pico = CAST(round(threshold * 1e12) AS INTEGER),
                  value = 0, threshold = 0
    WHERE kind <> 'error_rate';
