"""Compliance reports from the journal: bulk-decoded journal ranges -> Arrow -> Parquet.

Public API
    reports.run.run(kinds, journal_dir, out_dir, selection=Selection(), refdata_dir=None,
                    force=False, progress=None) -> RunResult(results=[KindResult(kind, files, rows,
                    rejected)], .rejected)
    reports.run.KINDS: orders, rts22, clock, controls, cat, execution-quality
    reports.source.Selection(first_seq=None, last_seq=None, session_id=None, trade_date=None)
    reports.source.open_slice(journal_dir, selection) -> JournalSlice (provenance(), fixed(rtype))
    reports.refdata.load(directory=None) -> RefData   (TOML: firm, instruments, parties, mics)
    reports.identifiers: lei_problem, isin_problem, mic_problem, cfi_problem (None = valid),
                         lei_check_digits, isin_check_digit
    reports.output.read_metadata(parquet_path) -> dict (journal id, sequence range, chain hash, ...)
    reports.auth016.parse_transactions(xml_bytes) -> [<New> elements]
Errors: reports.errors.ReportError > RefDataError, JournalRangeError, OutputExistsError,
        UnknownReportError.
Layout: OUT/<kind>/<table>/trade_date=YYYY-MM-DD/part-NNNNN.parquet, OUT/<kind>/rejects/,
        OUT/<kind>/_manifest.json, OUT/rts22/auth016/trade_date=.../auth016.xml,
        OUT/cat/submission/<submitter>_<IMID>_<YYYYMMDD>_<IMID><JOURNAL12>_OrderEvents_<NNNNNN>.json
        (+ .meta.json; JOURNAL12: the journal id's first 12 hex digits, upper case; submitter:
        firm.toml cat_submitter_id, else the CRD).
Every kind but controls is built chunk by chunk (journal ranges of events.CHUNK_SEQS sequences),
so memory is bounded by the chunk, not the journal; text exports are appended as they are made.
May import journal (and audit); never mm_core.
"""
