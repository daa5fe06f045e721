-- Per-report host and port rows cost ~300 inserts per report and nothing reads them: the
-- report itself (its signed bytes) is the record, and host and port history will be kept as
-- intervals updated at ingest, not as a copy of every report.
DROP TABLE report_ports;
DROP TABLE report_hosts;
