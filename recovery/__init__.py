"""Crash recovery: journal replay through a fresh engine, reconciliation with the venue, drills.

Public API (import the modules; this file imports nothing so drills and tools load only what
they use):
  recovery.recover    recover(RecoverySettings, progress=None, clock=time.time_ns,
                      keep_session=False) -> Recovery (.reconciled, .reasons, .engine, .replay,
                      .rounds, .summary(), .session, .code, .close_out); build_engine(config, symbols,
                      limits_text);
                      RecoverySettings.accept_code_change: recover a journal of other code anyway
  recovery.codecheck  CodeCheck(accept).check_journal(path): every SESSION_START's code fingerprint
                      (mm_core.buildid) against the running code's -> CodeMismatch, or when accepted
                      .differing; journal_sessions(reader); session_start(...) payload of this code
  recovery.replay     replay(records, engine, *, profile, fresh_session, resume, snapshot_every,
                      snapshot_dir, journal_id, witness, batch, code) -> ReplayResult; replay_journal(path,
                      engine, *, profile, fresh_session, last_seq, snapshots, snapshot_every, batch, code)
                      (batch: runs of quiet market-data packets in one C call; equal results)
  recovery.closeout   find_close_out(path, engine) -> CloseOut | None: the kill of everything that holds
                      the replayed engine, and whether it is the session's own close-out recovery
                      releases (.releasable, .why_not, .released)
  recovery.blocks     Blocks(reader, first_seq, last_seq): the journal read a block at a time
                      (replay_journal's source: packet runs are views of the block's buffer)
  recovery.reconcile  sans-io: venue_view([(seq, ouch bytes)]) -> VenueView; local_view(engine,
                      journaled_seqs) -> LocalView; reconcile(local, venue, venue_positions=None)
                      -> ReconResult; apply(engine, resolution, now_ns) -> [Action]
  recovery.snapshot   write_snapshot(..., witness=journal_witness(reader, seq)),
                      latest_snapshot(dir, reader, max_seq, setup): snapshots tied to the journal's
                      content at their sequence, chosen and pruned by the sequence they record
  recovery.standby    follow(path, engine, snapshots, every=5000, ..., accept_code_change=False)
                      -> ReplayResult (.code_changes)
  recovery.venue_link SoupSession (login, next_sequenced, sequenced, logout), full_view(...)
  recovery.errors     RecoveryError > JournalUnavailable, VenueUnavailable, BadVenueMessage,
                      BadRecoveryRecord, RecoverySetupError, CodeMismatch (and snapshot.SnapshotError)
RECON records (JSON) have "kind": code-change | begin | finding | resolution | close-out-release |
outcome; replay re-applies begin (not reconciled), resolution (apply) and outcome (Reconciled(ok)) so
a journal that went through a recovery still replays to the recovered engine's exact state
(code-change: recovery ran on other code than the journal's, as the operator accepted;
close-out-release: the evidence for the OPERATOR_CMD release-close-out by "recovery" after it, which
replay feeds as any command; neither has an engine effect of its own).
"""
