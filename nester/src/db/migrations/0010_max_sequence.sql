-- Each probe's highest stored sequence, kept on its row. Every insert reads that row anyway;
-- finding the maximum in `report_sequences` cost a descent of a large tree per report, and
-- retention (which keeps only each probe's newest report by time) could lower it. It only
-- grows.
ALTER TABLE probes ADD COLUMN max_sequence INTEGER;

UPDATE probes SET max_sequence = (
    SELECT max(s) FROM (
        SELECT max(sequence) AS s FROM report_sequences r WHERE r.probe_id = probes.probe_id
        UNION ALL
        SELECT max(sequence) FROM report_sequences_staged t WHERE t.probe_id = probes.probe_id));
