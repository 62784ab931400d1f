/* mmj — the mmaudit write-ahead journal: C API and ON-DISK FORMAT SPECIFICATION (version 2;
 * version 1 is still read, verified and, on request, written).
 *
 * This comment is the format spec. Changing any constant or layout below bumps
 * MMJ_FORMAT_VERSION. All integers are little-endian. "crc32c(seed, bytes)" is CRC-32C
 * (Castagnoli, reflected 0x82F63B78, init/xorout ~0, so crc32c(0, "123456789") = 0xE3069283)
 * continued from a previous value `seed`. "B(x)" is unkeyed BLAKE2b with a 32-byte digest and
 * "B[p](x)" the same with the 16-byte personalisation p (p's ASCII, zero-padded). The chain hash
 * "H(x)" depends on the version of the segment it covers (its header's version field):
 *   version 1: H(x) = B(x).
 *   version 2: let k = floor(len(x) / 1024), the stripes x[1024 s .. 1024 s + 1023] for s < k
 *     and the tail x[1024 k ..] (under 1024 bytes). Lane l (0..7) is the concatenation, over
 *     s = 0..k-1 and j = 0..15, of the 8 bytes at 1024 s + 64 j + 8 l, and
 *     H(x) = B["mmj-chain-root"](D0 || ... || D7 || tail || u64 len(x)),
 *     Dl = B["mmj-chain-lane" || byte l](lane l). The eight lanes are eight BLAKE2b streams that
 *     one AVX-512 register set computes together (3-4x the bytes per second of version 1 here;
 *     AVX2 computes four at a time).
 * A segment's chain, CHECKPOINTs and SEAL use its own version's H; the genesis hash is B(...).
 * A writer writes every new segment in its format (MMJ_FORMAT_VERSION unless the options ask for
 * 1), so a journal may hold version-1 segments followed by version-2 ones; journal.meta keeps the
 * version it was created with.
 *
 * DIRECTORY
 *   journal.meta              64 bytes, written once at creation (temp name + rename + dir fsync)
 *   LOCK                      lock file: the single writer holds an OFD write lock on it and
 *                             writes one line (fsynced) naming the journal's end (THE END OF THE
 *                             JOURNAL): "pid <pid> open <s>\n" once open, <s> the segment it
 *                             started in; "pid <pid> closing <l>\n" before a clean close seals
 *                             the last segment <l>; "pid <pid> closed <l> <next seq> <seal hash of
 *                             l, 64 hex>\n" after it; "pid <pid> recovering\n" while a recovery
 *                             removes segments. "pid <pid> open\n" and "pid <pid> closed\n" (older
 *                             writers) name nothing
 *   seg-<index %016llu>.mmj   segment files, index 0, 1, 2 ... with no gaps; readers start at
 *                             segment 0 and read nothing past a missing segment
 *   seg-<index %016llu>.sum   the summary of a sealed segment (SEGMENT SUMMARY), optional
 *   tailers/<name>.pos        named tailer positions (atomic rename), text: "mmjpos 2 <next seq>
 *                             <journal id, 32 hex> <last record's word|crc<<32, 16 hex>\n" once
 *                             the tailer has read a record (else "mmjpos 1 <next seq>\n", the
 *                             form an older version wrote, still read; TAILERS)
 *   discarded/r<N>/           what a recovery kept rather than deleted (DISCARDED DATA): not
 *                             journal data, never read by readers, tailers or verify; SALVAGE
 *                             reads its segment files one by one
 *   reserve.mmj               the reserve segment (RESERVE SEGMENT below)
 *   DAMAGED, DAMAGED.room     the marker of damage behind a summary, and the room kept for it
 *                             (DAMAGE BEHIND A SUMMARY)
 *   next.mmj.tmp              the next segment, preallocated, mapped and faulted in by the
 *                             writer's helper thread once the current one is half full; a roll
 *                             renames it to seg-<i+1>.mmj.tmp and finishes it as a new segment
 *                             (a roll that finds the helper still creating it waits for it, at
 *                             most 250 ms, then preallocates seg-<i+1>.mmj.tmp itself and the
 *                             helper deletes its file when done; later rolls while that file
 *                             is still not done do not wait again); deleted at open
 *   notify                    4096 bytes, not journal data: u32 futex counter at 0, u32 at 4:
 *                             epoch (high 16 bits) | count of waiting tailers (low 16 bits). A
 *                             writer that publishes records and sees a waiter bumps the counter
 *                             and FUTEX_WAKEs it; a tailer waiting with a timeout registers,
 *                             re-checks, and FUTEX_WAITs on it (slices of at most 10 ms), then
 *                             unregisters if the epoch is still its own. The writer resets the
 *                             count (new epoch, counter bumped, FUTEX_WAKE) at open and about once
 *                             a second while it is not zero, so a tailer killed while waiting
 *                             costs appends a wake call for at most a second; live waiters wake
 *                             and register again. Without write access tailers sleep-poll.
 *   Files are created under "<name>.tmp" and renamed; the directory is fsynced after every
 *   create and rename. Readers ignore *.tmp.
 *   A CREATION THAT FAILS (a writer open that found no journal.meta, e.g. when segment 0 cannot
 *   be preallocated) removes exactly what that open made, before it lets go of the lock: the
 *   segment files, journal.meta, LOCK if it created it, and the directory if it made it (when
 *   empty); then fsyncs the directory. Files that were there before stay. The open reports the
 *   original error, and the next attempt finds no journal and no lock. (A writer locks LOCK by
 *   descriptor, so one that locked a LOCK whose name a failed creation then removed lets it go and
 *   opens LOCK again: the lock is always held on the file LOCK names.)
 *
 * journal.meta (64 bytes)
 *   0   8  magic "MMJMETA\n"
 *   8   4  format version (1 or 2: the version the journal was created with)
 *   12  4  zero
 *   16  16 salt: 16 random bytes from getrandom(); the journal id is its hex
 *   32  8  creation time, CLOCK_REALTIME ns (informational)
 *   40  20 zero
 *   60  4  crc32c(0, bytes 0..59)
 *
 * SEGMENT FILE: fixed size S (a multiple of 4096, at least 64 KiB), preallocated with
 * posix_fallocate so every page is backed (a store into the mapping never SIGBUSes; a full disk
 * is reported when the segment is created, as MMJ_E_DISK_FULL) and zero-filled. The writer maps
 * the whole file MAP_SHARED and writes records in place; its helper thread pre-faults the next
 * segment whole (as far as it gets before the roll) and the current one a 4 MiB window ahead of
 * the appends (MADV_POPULATE_WRITE) so appends do not take page faults, and hashes published
 * bytes into the running chain state (HASH CHAIN) so a CHECKPOINT or SEAL only finishes the
 * bytes since the helper's last step.
 *   Segment header (128 bytes at offset 0):
 *   0   8  magic "MMJSEG1\n"
 *   8   4  format version (1 or 2: which chain hash H this segment uses)
 *   12  4  header size (128)
 *   16  16 salt (must equal journal.meta's)
 *   32  8  segment index (must equal the file name's)
 *   40  8  first sequence: the sequence of the first data record in this segment
 *   48  8  segment size S in bytes (must equal the file size)
 *   56  32 previous seal hash: the SEAL hash of segment index-1; for segment 0 the genesis
 *          hash B("mmj-genesis-v1" || salt)
 *   88  36 zero
 *   124 4  crc32c(0, bytes 0..123)
 *   Records follow at offset 128, each starting on an 8-byte boundary, back to back.
 *
 * RECORD (32-byte header + payload + zero padding to a multiple of 8 bytes):
 *   0   4  word: bit 31 PUBLISHED (always 1), bit 30 EOS (end-of-segment marker),
 *          bit 29 CONTROL (written by the core: CHECKPOINT or SEAL), bit 28 zero,
 *          bits 0..27 payload length L
 *   4   4  crc32c(K, word || bytes 8 .. 32+pad8(L)-1), i.e. header, payload and padding
 *   8   8  sequence
 *   16  8  timestamp, ns (signed; meaning given by the source)
 *   24  2  record type (catalogue.RecordType; 12 CHECKPOINT and 18 SEAL are the core's own)
 *   26  1  timestamp source (catalogue.TsSource)
 *   27  1  clock state (catalogue.ClockState)
 *   28  4  salt check K = crc32c(0, salt || segment index as u64)
 *   32  L  payload, then zero padding to the record size R = pad8(32 + L)
 *   The writer fills bytes 4..R-1 first and then publishes the word with a release store; a
 *   reader loads the word with an acquire load, so a reader in another process sees a whole
 *   record or nothing. The word after the last record is zero (the file is zero-filled, and
 *   recovery zeroes a discarded tail).
 *
 * SEQUENCES: data records are numbered 1, 2, 3 ... with no gaps across segments. Control
 *   records (CHECKPOINT, SEAL) and the EOS marker carry the sequence the next data record will
 *   get and do not consume it, so a batch always receives consecutive sequences.
 *
 * A RECORD AT OFFSET o OF SEGMENT i IS VALID IFF
 *   the word has bit 31 set and bit 28 clear, o + R <= S, the salt check equals K for (salt, i),
 *   the crc matches, the sequence equals the expected one (segment's first sequence for its first
 *   record, then +1 after each data record), and: if EOS, L = 0 and type 0; if CONTROL, the type
 *   is CHECKPOINT or SEAL and L = 40; otherwise the type is neither 0, CHECKPOINT nor SEAL.
 *   Reading stops at the first zero word (end of data) or invalid record; nothing after an
 *   invalid record is ever returned, even if it would validate.
 *
 * END OF SEGMENT: a segment ends with a SEAL record followed by an EOS marker (32 bytes, L = 0).
 *   The writer keeps room for both (MMJ_SEGMENT_RESERVE bytes) before appending. On a roll it
 *   first creates segment i+1 (header carries the seal hash), then writes SEAL and EOS in i.
 *   Every byte after the EOS marker is zero. A clean close also seals the current segment; the
 *   next writer starts a new segment.
 *
 * HASH CHAIN (tamper evidence): per segment, an anchor (offset a, value h) starts at
 *   (0, previous seal hash), so the segment header is covered. A CHECKPOINT (or SEAL) record at
 *   offset c carries payload { hash = H(h || bytes a .. c-1 of the segment), u64 data records in
 *   the segment before it }, and the anchor moves to (c, hash): each link covers the previous
 *   checkpoint record itself. A CHECKPOINT follows the first append call after which at least
 *   checkpoint_every data records were written since the last anchor. The SEAL's hash is the
 *   segment's seal hash, repeated in the next segment's header.
 *
 * SEGMENT SUMMARY (seg-<index>.sum, 96 bytes): lets a reader open a sealed segment without
 *   scanning it. Written after the segment's SEAL and EOS (and, in group/sync modes, after their
 *   msync) as seg-<index>.sum.tmp + rename, not fsynced; rewritten the same way with DURABLE set
 *   once the segment was fdatasynced (KNOWN DURABLE below); written by a writer's recovery for a
 *   sealed segment it scanned that had none. It is a hint, never an authority:
 *   0   8  magic "MMJSUM1\n"
 *   8   8  segment index
 *   16  8  first sequence (must equal the segment header's)
 *   24  8  data records in the segment
 *   32  8  offset s of the segment's SEAL record (8-aligned, >= 128)
 *   40  8  data end: s + 72 + 32, the offset after the EOS marker
 *   48  32 the SEAL hash
 *   80  1  flags: bit 0 DURABLE, set iff every byte of the segment up to the end of its EOS was
 *          msynced (or fsynced) before this summary was written
 *   81  11 zero
 *   92  4  crc32c(0, bytes 0..91)
 *   A SUMMARY IS BELIEVED IFF it is exactly 96 bytes, magic, crc, zero bytes, index and first
 *   sequence check, flags at most 1, and the segment itself has at offset s a valid SEAL record (RECORD rules,
 *   sequence first + records) whose hash and count equal the summary's, followed by a valid EOS
 *   marker. Otherwise (missing, torn, stale, from another segment) the segment is scanned as
 *   if there were none. A reader that believed a summary has not yet checked the records before
 *   the SEAL: it checks them all (RECORD rules) the first time it reads from that segment, and
 *   if they do not lead to that SEAL the snapshot ends where they stop, as a scan at open would
 *   have ended it (mmj_reader_range shrinks, mmj_reader_stop says where); so no record is ever
 *   returned unchecked. mmj_reader_open_ex with MMJ_READER_FULL_SCAN checks everything at open.
 *   (The check runs under a lock inside the reader, so threads that read one reader at once, as
 *   they safely could when open scanned everything, still may.) Recovery deletes the summaries of
 *   the segments it deletes or truncates, and moves those of the segments it keeps (DISCARDED
 *   DATA); verify ignores summaries.
 *   WRITER RECOVERY skips the scan of a sealed segment only when its summary is believed AND has
 *   DURABLE set: the segment's bytes reached the device before the summary's name did, so a
 *   power cut that kept the summary kept the records it describes (a summary written after no
 *   msync, in pagecache mode, could outlive torn or lost records: such a segment is scanned).
 *   What it does not re-check at open is damage after the fact (bit rot, tampering) between the
 *   header and the SEAL: readers check those records before returning them, verify() names them,
 *   and the writer checks them right after the open (DAMAGE BEHIND A SUMMARY).
 *
 * DAMAGE BEHIND A SUMMARY: a writer's open starts a thread (only when recovery skipped segments)
 *   that walks the records of every segment recovery skipped (RECORD rules, from the header to the
 *   EOS), in index order, while appends go on. A close finishes that check before it seals: it
 *   walks the skipped segments the thread has not reached yet, alongside it, so it costs the walk
 *   of what was left: nothing once the check has ended (about 1 s after the open of a journal with
 *   3 GB of cached trusted segments here); a close right after that open took 0.7-1.3 s on two
 *   shared cores (about 0.8 CPU-s of checking), at disk read speed for uncached segments. Otherwise
 *   a writer closed early would seal a segment, and the next open start another, after damage
 *   nobody checked, and each short-lived writer would trust the summary again. On the first damaged
 *   record (the lowest index either walk found) the writer latches: every later append, batch,
 *   checkpoint and sync returns MMJ_E_CORRUPT (mmj_writer_errno EBADMSG, mmj_writer_damage names
 *   the record) and the close does not seal; what was published before the latch was acknowledged
 *   and is still msynced, in group and sync modes, by the group budget's tick, by mmj_sync (which
 *   then returns MMJ_E_CORRUPT) and by the close (unlike after a failed msync, which latches
 *   MMJ_E_DURABILITY and msyncs nothing more); the close returns MMJ_E_CORRUPT if no call has
 *   reported the damage yet (found by the close itself, or by the thread after the last call; a
 *   call returning MMJ_E_CORRUPT, or mmj_writer_damage returning a reason, reports it), or if the
 *   DAMAGED marker could not be written, else MMJ_OK; and it writes the file DAMAGED ("damaged
 *   <reason> segment <i> offset <o> seq <s>\n", atomic rename) as soon as the damage is found. A
 *   full disk cannot refuse it: every writer open preallocates DAMAGED.room (4096 bytes, kept
 *   until used) while there is space, and the marker is written into it and renamed; without that
 *   file it is written as a new file, or into the space of reserve.mmj (which a latched writer no
 *   longer uses; the next open makes a new one). A marker that could not be written yet is tried
 *   again by mmj_writer_retry_space and by the close (one still missing then, with no DAMAGED.room
 *   and no reserve on a disk full from before the open: the next open checks the summaries again,
 *   as after a writer that died). While DAMAGED exists every writer open fails with MMJ_E_CORRUPT,
 *   the report naming that record, and changes nothing. An operator restores the segment and
 *   removes DAMAGED; or, to cut the journal at the damage, removes DAMAGED and the segment's
 *   summary, and recovery then scans it and keeps what follows the damage in discarded/
 *   (DISCARDED DATA); DAMAGED.room is not a marker and stays. The window
 *   that remains: records appended between the open and the end of the check (the check walks at
 *   memory speed when the segments are cached, at the disk's read speed when not) were
 *   acknowledged behind the damage; they are in the journal, and the latch and DAMAGED stop
 *   anything more from being added behind it. A writer that dies (no close) before its check ended
 *   leaves no mark: the next open trusts the summaries again and checks them again.
 *   Only a segment that is gone (MMJ_R_MISSING_SEGMENT), shorter than a header and a SEAL, or whose
 *   header no longer checks (MMJ_R_BAD_HEADER at offset 0), or a record that breaks the RECORD
 *   rules, is damage. A segment the check cannot map for a reason that says nothing of its bytes
 *   (EMFILE, ENOMEM, EIO) is tried again, with pauses from 1 ms growing to 50 ms, for up to a
 *   second (by the thread, or by the close for the segments it walks); if it still fails the check
 *   goes on with the next segment and then, no damage found, the writer latches as an I/O error:
 *   every later append, batch, checkpoint and sync returns MMJ_E_IO (mmj_writer_errno: that errno),
 *   and the close seals nothing, msyncs what was published and returns MMJ_E_IO. No DAMAGED is
 *   written: the next open checks the segments again.
 *   KNOWN DURABLE: a sealed segment is known durable iff its summary is believed and DURABLE.
 *   Any other sealed segment recovery keeps (a crashed pagecache-mode writer's rolled segments,
 *   or an unsynced one's after a clean close: in the page cache, which outlives the process but
 *   not a power cut) is fdatasynced whole by the new writer, and its summary then rewritten with
 *   DURABLE set, so that no later writer syncs (or scans) it again: in group and sync modes at
 *   open, before anything is appended (an acknowledged record never follows records a power cut
 *   could still take; a failed fdatasync fails the open with MMJ_E_DURABILITY), in pagecache mode
 *   by the first mmj_sync. The continued segment is covered
 *   by the writer's first msync, which starts at its header. So a sync covers every segment not
 *   known durable and none that is; a segment a pagecache writer rolls gets its mark from the
 *   mmj_sync that fdatasyncs it. Cost: the writeback of what is still dirty (an open in group
 *   mode right after a SIGKILL that left 1 GiB dirty took 1.06 s here, where 0.32 s is the scan
 *   every unmarked segment needed anyway; once marked, opening that journal took 14-18 ms).
 *
 * WHAT A CRASH LEAVES, AND RECOVERY (on writer open, under the lock):
 *   - a process crash: every published record is in the page cache; an unpublished record may
 *     have bytes but a zero word (the tail past the last record is then non-zero);
 *   - a power loss: pages reach disk in any order, so a word may be present without its payload
 *     (crc fails) or payload without word; in `pagecache` mode recent records may be missing;
 *   - a crash during a roll: segment i unsealed and segment i+1 present with no records (a roll
 *     creates i+1, then writes SEAL and EOS in i, msynced in group/sync modes, and only then
 *     appends in i+1: a crash never leaves records in i+1 behind an unsealed i; a power cut in
 *     pagecache mode, or damage, can).
 *   Recovery scans segments in order and stops at the first invalid record (or bad header, or a
 *   missing EOS in a segment that is not the last). It zeroes everything from that offset to the
 *   end of that segment (and msyncs it), removes all later segments (DISCARDED DATA: kept
 *   unless blank), reports what was discarded
 *   (mmj_recovery), and the writer continues appending in that last, unsealed segment right after
 *   its last valid record (continued_segment); only a segment of a format version other than the
 *   writer's is sealed (sealed_segment) and a new one started, so no segment mixes chain
 *   versions. A sealed last segment (clean close) gets a new successor; first the end is checked
 *   against LOCK (THE END OF THE JOURNAL), and a journal with segments missing at the end is
 *   refused. Readers and tailers
 *   never repair: they stop at
 *   the first invalid record. verify() checks everything, including the chain and zero tails.
 *
 * THE END OF THE JOURNAL: a roll creates segment i+1 (directory fsynced) before it seals i, so a
 *   writer, live or crashed, never leaves a sealed last segment; only a clean close does, and it
 *   names that segment in LOCK before sealing it ("closing l") and with its end after ("closed l
 *   <next seq> <seal>"). Segments removed from the end are therefore MMJ_R_MISSING_SEGMENT (for
 *   verify, and for a writer's open, which then fails with MMJ_E_SEGMENTS_MISSING and changes
 *   nothing) when LOCK names a segment past the last one present (or there is none), or the last
 *   segment is sealed and LOCK says "open", or names another segment, or (closed) another next
 *   sequence or seal hash. The first missing index is reported (the last present + 1). An
 *   unsealed last segment is a crash's (or, after a power cut in pagecache mode, a clean close's
 *   whose SEAL had not reached the disk): recovery as below. Segments past the one "closing" or
 *   "closed" names are a later writer's that died opening (before its "open"). A LOCK that names
 *   nothing (an older writer's, "recovering", empty, or removed) checks nothing: a sealed last
 *   segment is taken as the end, as before; the next writer's open writes the new form. An
 *   operator who accepts the loss of missing segments removes LOCK; the next writer continues
 *   after the last segment present. verify() reads LOCK after the segments, and does not report
 *   a journal that grew meanwhile (a writer opened or rolled) as short. A reader whose snapshot
 *   ends with a sealed segment l and no segment l+1 checks the same (at open and refresh, not per
 *   record): a segment file with an index past l+1, or LOCK naming another end, stops it with
 *   MMJ_R_MISSING_SEGMENT at l+1 (mmj_reader_stop), so it never takes a gap for the end.
 *   A reader whose snapshot ends inside an unsealed segment u (a zero word) checks that the
 *   journal does not go on after u: a segment past u+1, or u+1 with a non-zero byte in the first
 *   4 KiB after its header (a roll writes nothing there before u's EOS), means u is damage, not
 *   the live end; u is scanned once more (a roll may have sealed it meanwhile) and, still
 *   unsealed, stops the snapshot with MMJ_R_NO_EOS at u's data end, never silently dropping the
 *   later segments. A blank u+1 alone is a roll in progress (or cut short by a crash): the end.
 *   A writer's open treats that damage as DISCARDED DATA says (the later segments go to
 *   discarded/r<N>, reported with MMJ_R_NO_EOS at u); verify reports MMJ_R_NO_EOS.
 *   A TAILER checks the same where it waits, at most every 10 ms while it finds nothing new: at a
 *   sealed segment without successor, a later segment file or LOCK naming another end fails
 *   mmj_tailer_next with MMJ_E_SEGMENTS_MISSING (mmj_tailer_stop: MMJ_R_MISSING_SEGMENT, the first
 *   index missing); in an unsealed segment the journal goes on after, with MMJ_E_CORRUPT
 *   (MMJ_R_NO_EOS, where its data ends), after looking at its position once more. It never
 *   enters a segment past a missing index (a tailer positioned after a gap starts before it), so
 *   it hands out nothing past a gap. Race-free against a live writer: LOCK is read before the
 *   directory is listed (a writer creates a segment before LOCK names it), a roll creates i+1
 *   before the EOS of i (a tailer that read EOS finds i+1, or i+1 appears in the listing: growth),
 *   and writes in i+1 only after that EOS (a tailer that sees i+1 in use finds EOS at its position
 *   in i when it looks again).
 *
 * DISCARDED DATA: a crashed writer can only tear the tail of its last, unsealed segment. When
 *   the first invalid record is anywhere else (its segment has a summary, i.e. was sealed, or a
 *   later segment holds records), or a record after it in the same segment still validates
 *   (written after it: pages written back out of order at a power loss, or damage in front of
 *   later records), what follows it is damage in front of records that were written,
 *   and recovery keeps it rather than deleting it: before repairing the segment it writes a copy
 *   of the segment's bytes up to its last non-zero byte (fsynced), and it moves each later
 *   segment that is not blank instead of deleting it, all into discarded/r<N>/ under their own
 *   names (N = 1, 2, ...; mmj_recovery.discarded_run); a segment with a damaged header is kept
 *   the same way, and each kept segment's summary goes with it. Readers, tailers and verify never
 *   read discarded/. A torn tail of the last segment, and a blank later segment (valid header,
 *   only zeros after it: a roll cut short), are zeroed or deleted as before. If discarded/ cannot
 *   be written the writer open fails (MMJ_E_IO): before the damaged segment is repaired if its
 *   copy could not be made; if a later segment could not be moved, after the repair, leaving that
 *   segment and those after it in place, which the next open finds (a segment without EOS
 *   followed by others) and moves again. No record is deleted either way.
 *
 * SALVAGE (mmj_salvage_segment) reads one kept file on its own, not as part of a journal. Its
 *   header must have the magic (else MMJ_E_CORRUPT; a newer version with an intact crc is
 *   MMJ_E_VERSION); a header that fails the other SEGMENT FILE checks is reported and its segment
 *   index still used. From offset 128 every 8-byte step is tried as a record of that index by the
 *   RECORD rules with any sequence (salt check, crc, word, EOS/CONTROL type and length): one that
 *   validates is reported and the walk goes on after it. The bytes between records that validate
 *   are reported as invalid ranges; after the last one only up to the last non-zero byte (the
 *   rest of a segment is zero-filled). A kept copy ends at its last non-zero byte, so the bytes
 *   after it, up to the size S of an intact header, read as zeros, as they were in the segment
 *   (a last record whose zero payload tail or padding was cut still validates, its crc proving
 *   those zeros). The file is mapped read-only and never written.
 *
 * DURABILITY: pagecache (survives a process crash), group (msync after group_records records or
 *   group_us microseconds since the last sync, whichever comes first: checked at append time, and
 *   while appends pause by the writer's helper thread, which wakes at least every millisecond and
 *   msyncs the published records once the last sync is group_us old and records are unsynced, so
 *   a record waits at most group_us plus that wake-up interval; it only tries the writer mutex,
 *   leaving a busy writer's own append to check; a failure latches as at an append),
 *   sync (msync before append returns). A failed msync/fsync is fatal and latched: every later
 *   append returns MMJ_E_DURABILITY; the writer never retries. The append whose msync failed has
 *   published its record (readers may see it) but reports MMJ_E_DURABILITY, not a sequence: the
 *   caller must treat it as not durable. Segment creation fsyncs the file in group/sync modes.
 *
 * SPACE: a writer open after a crash continues in the crashed segment; after a clean close (which
 *   seals) it starts a new segment. The close punches a hole from the page after the sealed
 *   segment's EOS to S (FALLOC_FL_PUNCH_HOLE, best effort; not on tmpfs, where a reader's fault
 *   on a hole allocates and a full mount would SIGBUS it): the file keeps its size S and those
 *   bytes still read as zeros, so each clean open/close cycle costs the pages it wrote, not a
 *   segment of disk. Nothing is ever written to a sealed segment again. A live writer holds up to
 *   two more preallocated files of S bytes: reserve.mmj, and next.mmj.tmp once the live segment
 *   is half full.
 *
 * RESERVE SEGMENT (room for risk-reducing records on a full disk):
 *   reserve.mmj               S bytes, preallocated (posix_fallocate) and zero-filled, never
 *                             written while it has this name; readers, tailers and verify ignore
 *                             it (it is not a seg-* file). Created as reserve.mmj.tmp + rename.
 *   The writer keeps one beside the live segment: made at open when missing (one of another size
 *   is replaced). When a roll cannot preallocate the next segment (ENOSPC/EDQUOT) the append gets
 *   MMJ_E_DISK_FULL and the writer enters LOW-SPACE state: ordinary appends are refused with
 *   MMJ_E_DISK_FULL, nothing written is lost. mmj_append_reserve may then roll into the reserve:
 *   reserve.mmj is renamed to seg-<i+1>.mmj.tmp, gets its header, is fsynced and renamed to
 *   seg-<i+1>.mmj exactly like a new segment (the format does not change: a used reserve is an
 *   ordinary segment). Reserve appends fill it; then MMJ_E_DISK_FULL for them too. Failing to make
 *   a reserve at open also starts the writer in low-space state; at open, recovery's new segment
 *   may come from the reserve when the disk is full. mmj_writer_retry_space makes a new reserve,
 *   rolls into a new ordinary segment if needed and returns to normal.
 *   A crash leaves: reserve.mmj (kept by the next writer if its size is S), reserve.mmj.tmp
 *   (deleted at open), or a reserve half-way to a segment as seg-<i>.mmj.tmp (deleted like any
 *   segment temp file; the next writer makes a new reserve).
 *
 * API conventions: every function returns an mmj_status (or, for mmj_append, a sequence >= 1
 * or a negative mmj_status). Outputs are marked OUT. Pointers into mapped segments returned in
 * mmj_record are valid until the next call on the same reader/tailer. A writer may be shared by
 * threads (appends, sync and checkpoint are serialised by a mutex) but mmj_writer_close, which
 * frees it, must not race with them. A binding that cannot rule that out (Python, where another
 * thread may still be inside an append) calls mmj_writer_shutdown when the journal is closed, so
 * that later and concurrent calls return MMJ_E_CLOSED, and mmj_writer_free once no thread can
 * hold the pointer. A reader or tailer belongs to one thread at a time. Each open writer runs one
 * helper thread (stopped by mmj_writer_shutdown); a child created by fork() has no helper and
 * must free its copy with mmj_writer_abandon.
 */
#ifndef MMJ_JOURNAL_H
#define MMJ_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MMJ_FORMAT_VERSION 2
#define MMJ_FORMAT_VERSION_MIN 1     /* the oldest version still read */
#define MMJ_HEADER_SIZE 128
#define MMJ_RECORD_HEADER_SIZE 32
#define MMJ_HASH_SIZE 32
#define MMJ_SALT_SIZE 16
#define MMJ_MAX_PAYLOAD 268435455
#define MMJ_CONTROL_PAYLOAD 40
#define MMJ_SEGMENT_RESERVE 104
#define MMJ_MIN_SEGMENT_SIZE 65536
#define MMJ_RTYPE_CHECKPOINT 12
#define MMJ_RTYPE_SEAL 18
#define MMJ_RTYPE_ANY 4294967295 /* read_blobs: every data record (no record has this type) */

/* Return codes. Negative values are errors; MMJ_OK and MMJ_END/MMJ_AGAIN are not. */
enum mmj_status {
    MMJ_OK = 0,
    MMJ_END = 1,               /* iteration reached the end of the readable records */
    MMJ_AGAIN = 2,             /* a tailer found no new record before its timeout */
    MMJ_E_ARG = -1,            /* a bad argument (null pointer, reserved type, bad option) */
    MMJ_E_IO = -2,             /* a system call failed; see the handle's errno */
    MMJ_E_NOT_JOURNAL = -3,    /* the directory is not a journal (no or bad journal.meta) */
    MMJ_E_VERSION = -4,        /* written by a newer format version */
    MMJ_E_LOCKED = -5,         /* another live process holds the writer lock */
    MMJ_E_CORRUPT = -6,        /* an invalid record or header where a valid one must be (also: a
                                  writer latched by, or an open refused for, DAMAGE BEHIND A SUMMARY) */
    MMJ_E_TOO_LARGE = -7,      /* the record cannot fit in an empty segment */
    MMJ_E_CLOSED = -8,         /* the handle was closed */
    MMJ_E_DISK_FULL = -9,      /* no space to preallocate a segment (ENOSPC/EDQUOT) */
    MMJ_E_DURABILITY = -10,    /* an msync/fsync failed; the writer is latched failed */
    MMJ_E_NOT_FOUND = -11,     /* no record with that sequence */
    MMJ_E_NOMEM = -12,         /* out of memory */
    MMJ_E_PAYLOAD_SIZE = -13,  /* payload size does not match the registered size of its type */
    MMJ_E_EXISTS = -14,        /* create requested exclusively but a journal exists */
    MMJ_E_POSITION_LOST = -15, /* a tailer's position is past the journal's records: a recovery cut
                                  the journal back behind what the tailer had read (TAILERS) */
    MMJ_E_SEGMENTS_MISSING = -16 /* segments were removed from the journal's end (LOCK names more
                                  than the directory holds): a writer refuses to open; a tailer
                                  that reaches a missing segment stops (THE END OF THE JOURNAL) */
};

/* Why a record or segment is invalid (recovery and verify reports). */
enum mmj_reason {
    MMJ_R_NONE = 0,            /* nothing wrong */
    MMJ_R_TORN = 1,            /* word zero but non-zero bytes follow: an unpublished record */
    MMJ_R_BAD_LENGTH = 2,      /* word lacks PUBLISHED, has reserved bits, or overruns the segment */
    MMJ_R_BAD_SALT = 3,        /* salt check differs: stale bytes or bytes of another segment */
    MMJ_R_BAD_CRC = 4,         /* checksum mismatch */
    MMJ_R_SEQ_GAP = 5,         /* sequence differs from the expected one */
    MMJ_R_BAD_CONTROL = 6,     /* EOS/CONTROL flags, type and length disagree */
    MMJ_R_BAD_HEADER = 7,      /* segment header: magic, crc, salt, index, size or first seq */
    MMJ_R_MISSING_SEGMENT = 8, /* a segment index is missing, or segments were removed from the end
                                  (THE END OF THE JOURNAL) */
    MMJ_R_NO_EOS = 9,          /* a segment that is not the last ends without SEAL + EOS (with the
                                  writer live, not while the segment after it is the last and
                                  holds nothing yet: a roll in progress) */
    MMJ_R_CHAIN = 10,          /* a CHECKPOINT/SEAL hash does not match the recomputed chain */
    MMJ_R_PREV_SEAL = 11,      /* a header's previous seal hash differs from the seal */
    MMJ_R_TRAILING = 12        /* non-zero bytes after the EOS marker or after the last record */
};

enum mmj_durability {
    MMJ_DUR_PAGECACHE = 0,     /* no msync: survives a process crash, not a power loss */
    MMJ_DUR_GROUP = 1,         /* msync after group_records records or group_us microseconds */
    MMJ_DUR_SYNC = 2           /* msync before every append returns */
};

#define MMJ_FLAG_PUBLISHED 2147483648
#define MMJ_FLAG_EOS 1073741824
#define MMJ_FLAG_CONTROL 536870912
#define MMJ_FLAG_RESERVED 268435456
#define MMJ_LENGTH_MASK 268435455

typedef struct mmj_writer mmj_writer;
typedef struct mmj_reader mmj_reader;
typedef struct mmj_tailer mmj_tailer;

/* Writer options; zero fields take the documented defaults. */
typedef struct mmj_options {
    uint64_t segment_size;     /* bytes per segment file, multiple of 4096 (default 64 MiB) */
    int32_t durability;        /* enum mmj_durability */
    uint32_t group_records;    /* group mode: msync after this many records (default 64) */
    uint32_t group_us;         /* group mode: or after this many microseconds (default 1000) */
    uint32_t checkpoint_every; /* data records between CHECKPOINTs (default 4096) */
    int32_t create;            /* 1: create the journal if the directory has none */
    uint32_t format_version;   /* format of the segments written: 0 for MMJ_FORMAT_VERSION, or 1
                                * (the version-1 chain hash) while readers are not yet upgraded */
} mmj_options;

/* What recovery found and discarded when a writer opened the journal. */
typedef struct mmj_recovery {
    int32_t reason;            /* enum mmj_reason of the first invalid item, MMJ_R_NONE if clean */
    int32_t previous_pid;      /* pid found in LOCK from the previous writer, 0 if none */
    int32_t previous_clean;    /* 1 if the previous writer closed cleanly */
    int32_t created;           /* 1 if this open created the journal */
    uint64_t segment;          /* segment index of the first invalid item */
    uint64_t offset;           /* its byte offset in that segment */
    uint64_t seq;              /* the sequence expected there */
    uint64_t bytes_discarded;  /* bytes zeroed: from offset to the last non-zero byte after it */
    uint64_t segments_removed; /* later segments that left the journal (deleted, or kept) */
    uint64_t records_discarded;/* valid-looking data records zeroed after the first invalid one, and
                                  in the removed segments (deleted or kept) */
    uint64_t sealed_segment;   /* 1 + index of the unsealed segment recovery sealed, 0 if none */
    uint64_t continued_segment;/* 1 + index of the unsealed segment the writer continues in, 0 if none */
    uint64_t segments_kept;    /* of segments_removed, those moved to discarded/r<N> (not blank) */
    uint32_t discarded_run;    /* N of discarded/r<N> holding what recovery kept, 0 if nothing */
    uint32_t pad;
} mmj_recovery;

/* One record as returned by readers and tailers. */
typedef struct mmj_record {
    uint64_t seq;              /* sequence */
    int64_t ts_ns;             /* timestamp, ns */
    uint16_t rtype;            /* record type */
    uint8_t ts_source;         /* timestamp source */
    uint8_t clock_state;       /* clock state */
    uint32_t flags;            /* MMJ_FLAG_CONTROL for CHECKPOINT/SEAL records */
    uint32_t length;           /* payload length */
    const uint8_t *payload;    /* payload bytes inside the mapping */
    uint64_t segment;          /* segment index */
    uint64_t offset;           /* byte offset of the record in its segment */
} mmj_record;

/* A reader position: opaque to callers, start with mmj_reader_seek. */
typedef struct mmj_pos {
    uint64_t slot;             /* index into the reader's segment table */
    uint64_t offset;           /* byte offset in that segment */
} mmj_pos;

/* Result of mmj_verify. */
typedef struct mmj_verify_report {
    int32_t ok;                /* 1 if nothing is wrong */
    int32_t reason;            /* enum mmj_reason of the first problem */
    uint64_t records;          /* data records checked */
    uint64_t segments;         /* segments checked */
    uint64_t checkpoints;      /* CHECKPOINT + SEAL hashes checked */
    uint64_t bad_seq;          /* sequence at (or expected at) the first problem */
    uint64_t bad_segment;      /* its segment index */
    uint64_t bad_offset;       /* its offset in the segment */
    uint64_t chain_from_seq;   /* for MMJ_R_CHAIN: first data sequence the failed link covers */
    uint64_t last_seq;         /* last valid data sequence, 0 if none */
    int32_t last_sealed;       /* 1 if the last segment is sealed */
    int32_t writer_live;       /* 1 if a live writer holds the lock */
    uint64_t unanchored;       /* data records after the last CHECKPOINT/SEAL */
} mmj_verify_report;

/* ---- status, checksums, hashes -------------------------------------------------------- */

/* Static English text for a status code. */
const char *mmj_strerror(int status /* an mmj_status */);
/* Static English text for a reason code. */
const char *mmj_reason_name(int reason /* an mmj_reason */);
/* CRC-32C of buf continued from crc (0 to start); the fastest available implementation. */
uint32_t mmj_crc32c(uint32_t crc /* previous value */, const void *buf /* bytes */, size_t len /* count */);
/* CRC-32C in portable slicing-by-8 software. */
uint32_t mmj_crc32c_sw(uint32_t crc /* previous value */, const void *buf /* bytes */, size_t len /* count */);
/* CRC-32C with the SSE4.2 instruction (falls back to software where the CPU lacks it). */
uint32_t mmj_crc32c_hw(uint32_t crc /* previous value */, const void *buf /* bytes */, size_t len /* count */);
/* 1 if the CPU has the SSE4.2 crc32 instruction. */
int mmj_crc32c_hw_available(void);

typedef struct mmj_blake2b_ctx {
    uint64_t h[8];             /* chained state */
    uint64_t t[2];             /* byte counter */
    uint8_t buf[128];          /* pending block */
    size_t buffered;           /* bytes in buf */
} mmj_blake2b_ctx;

/* Start an unkeyed BLAKE2b-256 hash. */
void mmj_blake2b_init(mmj_blake2b_ctx *ctx /* OUT: state */);
/* Feed bytes. */
void mmj_blake2b_update(mmj_blake2b_ctx *ctx /* state */, const void *data /* bytes */, size_t len /* count */);
/* Finish; ctx must be re-initialised before reuse. */
void mmj_blake2b_final(mmj_blake2b_ctx *ctx /* state */, uint8_t *out /* OUT: 32 bytes */);
/* One-shot BLAKE2b-256. */
void mmj_blake2b_256(const void *data /* bytes */, size_t len /* count */, uint8_t *out /* OUT: 32 bytes */);
/* The chain hash H(anchor_hash || data) of format `version` (1 or 2; see HASH CHAIN). */
void mmj_chain_hash(uint32_t version /* 1 or 2 */, const uint8_t *anchor_hash /* 32 bytes */,
                    const void *data /* bytes */, size_t len /* count */, uint8_t *out /* OUT: 32 bytes */);
/* Instruction sets for version-2 chain hashing; all give the same digests. */
enum mmj_chain_simd_level {
    MMJ_CHAIN_PORTABLE = 0,    /* plain C, one lane at a time */
    MMJ_CHAIN_AVX2 = 1,        /* four lanes per 256-bit register */
    MMJ_CHAIN_AVX512 = 2       /* all eight lanes per 512-bit register */
};
/* Use at most `level` (an mmj_chain_simd_level; -1 for the best the CPU has) for version-2 chain
 * hashing in this process; the default is the best. Returns the level now used. */
int mmj_chain_simd(int level /* enum mmj_chain_simd_level, or -1 */);

/* ---- writer --------------------------------------------------------------------------- */

/* Open (and with opt->create, create) the journal in dir as its single writer: take the lock,
 * run recovery, seal a crashed segment, start a new segment. */
int mmj_writer_open(const char *dir /* journal directory */,
                    const mmj_options *opt /* options, NULL for defaults */,
                    mmj_writer **out /* OUT: the writer, NULL on error */,
                    mmj_recovery *report /* OUT: what recovery did; may be NULL */,
                    int *err /* OUT: errno of a failed system call, 0 if none (always
                                 0 on MMJ_OK); may be NULL */);
/* Register the fixed payload size of a record type (types < 65536); appends of that type with
 * another size fail with MMJ_E_PAYLOAD_SIZE. size 0 unregisters. */
int mmj_writer_set_type_size(mmj_writer *w /* writer */, uint32_t rtype /* record type */,
                             uint32_t size /* payload bytes, 0 for variable */);
/* Append one record; returns its sequence (>= 1) or a negative mmj_status. */
int64_t mmj_append(mmj_writer *w /* writer, NULL gives MMJ_E_CLOSED */,
                   uint32_t rtype /* record type, not 0/CHECKPOINT/SEAL, < 65536 */,
                   const char *payload /* payload bytes (may be NULL when len is 0) */,
                   uint64_t len /* payload length */,
                   int64_t ts_ns /* timestamp, ns */,
                   uint32_t ts_source /* timestamp source, < 256 */,
                   uint32_t clock_state /* clock state, < 256 */);
/* Append count records of one type from a packed buffer. Record k's payload is
 * buf[offsets[k] .. offsets[k+1]) when offsets is given (count+1 entries), otherwise
 * buf[k*size .. (k+1)*size). Sequences are consecutive. Bad input writes nothing; an error after
 * records were published (no room for a segment, a failed roll, a failed msync) returns with
 * *written set to them: MMJ_E_DURABILITY whenever the writer latched failed on the way. */
int mmj_append_batch(mmj_writer *w /* writer */, uint32_t rtype /* record type */,
                     const char *buf /* payloads */, uint64_t size /* fixed size when offsets is NULL */,
                     const uint64_t *offsets /* count+1 payload boundaries, or NULL */,
                     uint64_t count /* number of records */,
                     const int64_t *ts_ns /* count timestamps, or NULL for ts_scalar */,
                     int64_t ts_scalar /* timestamp when ts_ns is NULL */,
                     uint32_t ts_source /* timestamp source for all */,
                     uint32_t clock_state /* clock state for all */,
                     uint64_t *first_seq /* OUT: sequence of the first record */,
                     uint64_t *written /* OUT: records published, also on error: records
                                          first_seq .. first_seq + written - 1 are in the journal */);
/* mmj_append for a risk-reducing record (a cancel, a kill): in low-space state it may roll into
 * the reserve segment, and it succeeds while the current segment has room; ordinary appends
 * are refused with MMJ_E_DISK_FULL until mmj_writer_retry_space succeeds. */
int64_t mmj_append_reserve(mmj_writer *w /* writer */, uint32_t rtype /* record type */,
                           const char *payload /* payload bytes */, uint64_t len /* payload length */,
                           int64_t ts_ns /* timestamp, ns */, uint32_t ts_source /* timestamp source */,
                           uint32_t clock_state /* clock state */);
/* mmj_append (same parameters, same meaning) that never blocks: 0, with nothing written, when
 * the writer mutex is held (by another append, an mmj_sync's fdatasync, a roll waiting for the
 * helper's next segment) or when the append could block itself (an msync: always in group and
 * sync modes; a roll, for the record or the CHECKPOINT after it). A caller that must not wait
 * while holding something others need (a Python binding holding the GIL) tries this first and,
 * on 0, lets go of it and calls mmj_append. */
int64_t mmj_append_nowait(mmj_writer *w, uint32_t rtype, const char *payload, uint64_t len, int64_t ts_ns,
                          uint32_t ts_source, uint32_t clock_state);
/* mmj_append_reserve that never blocks, as mmj_append_nowait. */
int64_t mmj_append_reserve_nowait(mmj_writer *w, uint32_t rtype, const char *payload, uint64_t len,
                                  int64_t ts_ns, uint32_t ts_source, uint32_t clock_state);
/* mmj_append_batch (same parameters, same meaning) plus reserve: 1 makes the batch behave as
 * mmj_append_reserve, 0 as an ordinary batch. */
int mmj_append_batch_ex(mmj_writer *w, uint32_t rtype, const char *buf, uint64_t size,
                        const uint64_t *offsets, uint64_t count, const int64_t *ts_ns, int64_t ts_scalar,
                        uint32_t ts_source, uint32_t clock_state, uint64_t *first_seq /* OUT */,
                        uint64_t *written /* OUT */, int reserve /* 1: may use the reserve segment */);
/* 1 while the writer is in low-space state (ordinary appends refused), else 0. */
int mmj_writer_space_low(const mmj_writer *w /* writer */);
/* Leave low-space state: preallocate a fresh reserve and, when the last roll failed or the
 * reserve is being written, roll into a new ordinary segment. MMJ_OK when back to normal (or
 * never low), MMJ_E_DISK_FULL while space is still short (a statvfs check first, so it is cheap
 * enough for a 1 Hz timer). */
int mmj_writer_retry_space(mmj_writer *w /* writer */);
/* Make everything appended so far durable (any durability mode): fdatasync the sealed segments
 * not known durable (KNOWN DURABLE: a crashed or unsynced pagecache writer's, found at open) and
 * those rolled away since the last sync (pagecache mode seals them without an msync), marking
 * their summaries DURABLE, then msync the current segment; each is reported to the sync hook. On
 * a latched writer it still syncs unless an msync failed, and returns the latch's status
 * (MMJ_E_CORRUPT for damage, MMJ_E_IO, MMJ_E_DURABILITY). */
int mmj_sync(mmj_writer *w /* writer */);
/* Write a CHECKPOINT now. */
int mmj_checkpoint(mmj_writer *w /* writer */);
/* Seal the current segment, sync, release the lock and free the writer (always freed):
 * mmj_writer_shutdown then mmj_writer_free. */
int mmj_writer_close(mmj_writer *w /* writer; NULL is a no-op */);
/* Everything mmj_writer_close does but the free, after any call in progress on another thread
 * (they hold the writer mutex); from then on every call on the writer returns MMJ_E_CLOSED. A
 * second shutdown returns MMJ_E_CLOSED. It first finishes the check after open (DAMAGE BEHIND A
 * SUMMARY): MMJ_E_CORRUPT, nothing sealed and DAMAGED written, for damage no call reported yet
 * (or whose DAMAGED could still not be written); MMJ_E_IO, nothing sealed, if a trusted segment
 * stayed unreadable. */
int mmj_writer_shutdown(mmj_writer *w /* writer; NULL is a no-op */);
/* Free a writer after mmj_writer_shutdown, once no thread can still call it. */
void mmj_writer_free(mmj_writer *w /* writer that was shut down; NULL is a no-op */);
/* Free a writer inherited across fork() without touching the journal: unmap, close this
 * process's descriptors (the parent keeps the lock), no SEAL. Call it in the child. */
int mmj_writer_abandon(mmj_writer *w /* writer copied by fork; NULL is a no-op */);
/* The sequence the next data record will get. */
uint64_t mmj_writer_next_seq(const mmj_writer *w /* writer */);
/* Index of the segment being written. */
uint64_t mmj_writer_segment(const mmj_writer *w /* writer */);
/* Copy the journal's salt. */
void mmj_writer_salt(const mmj_writer *w /* writer */, uint8_t *out /* OUT: 16 bytes */);
/* The damage the check after open found behind a believed summary (DAMAGE BEHIND A SUMMARY): its
 * mmj_reason, MMJ_R_NONE (0) if none (yet), and where: segment, offset, expected sequence. */
int mmj_writer_damage(mmj_writer *w /* writer */, uint64_t *segment /* OUT */, uint64_t *offset /* OUT */,
                      uint64_t *seq /* OUT */);
/* errno of the last failed system call on this writer (the latched one after MMJ_E_DURABILITY). */
int mmj_writer_errno(const mmj_writer *w /* writer */);
/* Called after each msync or fsync that made bytes [from, to) of segment `segment` durable (an
 * msync's range starts at a page boundary; a new segment made durable at creation, header and
 * preallocated zeros, reports [0, S); a rolled segment fdatasynced by mmj_sync reports up to S).
 * For tracing and for power-loss tests that must know what
 * reached the device; runs with the writer's lock held on the appending thread (or, for group
 * mode's time budget while appends pause, on the writer's helper thread), so it must not call
 * into this writer. */
typedef void (*mmj_sync_hook)(void *ctx, uint64_t segment, uint64_t from, uint64_t to);
/* Install (hook NULL: remove) the sync hook. */
int mmj_writer_set_sync_hook(mmj_writer *w /* writer */, mmj_sync_hook hook, void *ctx /* passed to hook */);

/* ---- reader --------------------------------------------------------------------------- */

/* Open a read-only snapshot: map every segment and index its valid records (sealed segments
 * with a believed summary are checked when first read). Never repairs. */
int mmj_reader_open(const char *dir /* journal directory */, mmj_reader **out /* OUT: reader */,
                    int *err /* OUT: errno of a failed system call; may be NULL */);
/* Flags of mmj_reader_open_ex. */
#define MMJ_READER_FULL_SCAN 1      /* scan every segment at open, ignoring summaries */
/* mmj_reader_open with flags: by default sealed segments whose summary is believed (SEGMENT
 * SUMMARY) are opened without a scan, so the cost of an open does not grow with the journal. */
int mmj_reader_open_ex(const char *dir /* journal directory */, uint32_t flags /* MMJ_READER_* */,
                       mmj_reader **out /* OUT: reader */,
                       int *err /* OUT: errno of a failed system call; may be NULL */);
/* Segments of the snapshot opened from their summary and not yet checked record by record. */
uint64_t mmj_reader_unchecked(const mmj_reader *r /* reader */);
/* Check segment index's summary against the segment: MMJ_OK with its first sequence, data
 * records and data end if it would be believed; MMJ_E_NOT_FOUND without a summary (or segment),
 * MMJ_E_CORRUPT if it would not be believed. */
int mmj_segment_summary(const char *dir /* journal directory */, uint64_t index /* segment index */,
                        uint64_t *first_seq /* OUT */, uint64_t *records /* OUT */,
                        uint64_t *end /* OUT */);
/* Pick up records and segments appended since open or the last refresh (and look again at an
 * end that was missing segments: a writer's roll or open may have been seen half-way). */
int mmj_reader_refresh(mmj_reader *r /* reader */);
/* Unmap and free (NULL is a no-op). */
void mmj_reader_close(mmj_reader *r /* reader */);
/* First and last readable data sequence (last < first when empty), salt, stop state. */
void mmj_reader_range(const mmj_reader *r /* reader */, uint64_t *first /* OUT */, uint64_t *last /* OUT */);
void mmj_reader_salt(const mmj_reader *r /* reader */, uint8_t *out /* OUT: 16 bytes */);
uint64_t mmj_reader_segments(const mmj_reader *r /* reader */);
/* Where the snapshot stopped early (reason MMJ_R_NONE if it did not): on an invalid record or
 * segment header, or MMJ_R_MISSING_SEGMENT (segment = the first index missing, offset 0) when its
 * last segment is sealed and the journal does not end there (THE END OF THE JOURNAL). */
void mmj_reader_stop(const mmj_reader *r /* reader */, int32_t *reason /* OUT */,
                     uint64_t *segment /* OUT */, uint64_t *offset /* OUT */);
/* Describe segment slot: index, first seq, data records, sealed, size. */
int mmj_reader_segment_info(const mmj_reader *r /* reader */, uint64_t slot /* 0..segments-1 */,
                            uint64_t *index /* OUT */, uint64_t *first_seq /* OUT */,
                            uint64_t *records /* OUT */, int32_t *sealed /* OUT */,
                            uint64_t *size /* OUT */);
/* The data record with this sequence. */
int mmj_reader_get(const mmj_reader *r /* reader */, uint64_t seq /* sequence */,
                   mmj_record *out /* OUT: the record */);
/* Position at the data record with sequence seq (or the first one if seq is below it). */
int mmj_reader_seek(const mmj_reader *r /* reader */, uint64_t seq /* sequence */,
                    mmj_pos *pos /* OUT: position */);
/* The record at pos and advance; MMJ_END past the snapshot. EOS markers are never returned. */
int mmj_reader_next(const mmj_reader *r /* reader */, mmj_pos *pos /* in/OUT: position */,
                    int include_control /* 1 to return CHECKPOINT/SEAL records too */,
                    mmj_record *out /* OUT: the record */);
/* Copy data records of one fixed-size type with first <= seq <= last into rows of
 * 20 + size bytes: seq u64, rtype u16, ts_source u8, clock_state u8, ts_ns i64, payload.
 * With out NULL only counts. A record of that type with another size gives
 * MMJ_E_PAYLOAD_SIZE. */
int mmj_reader_read_fixed(const mmj_reader *r /* reader */, uint32_t rtype /* record type */,
                          uint64_t size /* payload size */, uint64_t first /* first seq */,
                          uint64_t last /* last seq */, char *out /* OUT: rows, or NULL */,
                          uint64_t cap /* rows that fit in out */, uint64_t *rows /* OUT: rows */);
/* mmj_reader_read_fixed for ntypes types in one pass over the range: type k's rows (20-byte
 * header + sizes[k] payload bytes) go to outs[k], at most caps[k] of them, rows[k] filled. */
int mmj_reader_read_fixed_many(const mmj_reader *r /* reader */, uint64_t ntypes /* number of types */,
                               const uint32_t *rtypes /* ntypes record types */,
                               const uint64_t *sizes /* ntypes payload sizes */,
                               uint64_t first /* first seq */, uint64_t last /* last seq */,
                               char *const *outs /* OUT: ntypes row buffers */,
                               const uint64_t *caps /* ntypes capacities in rows */,
                               uint64_t *rows /* OUT: ntypes row counts */);
/* Copy data records of one type (or of every type with MMJ_RTYPE_ANY, in sequence order):
 * 20-byte headers (as above), payloads concatenated into blob, and rows+1 offsets into blob.
 * With hdr NULL only counts rows and bytes. */
int mmj_reader_read_blobs(const mmj_reader *r /* reader */, uint32_t rtype /* record type */,
                          uint64_t first /* first seq */, uint64_t last /* last seq */,
                          char *hdr /* OUT: 20-byte headers, or NULL */,
                          char *blob /* OUT: payload bytes */, uint64_t *offsets /* OUT: rows+1 */,
                          uint64_t cap_rows /* rows that fit */, uint64_t cap_bytes /* bytes that fit */,
                          uint64_t *rows /* OUT */, uint64_t *bytes /* OUT */);

/* Columns of every data record (all types) with first <= seq <= last, in sequence order, in one
 * pass over the mapped bytes; at most cap rows (data sequences have no gaps, so
 * last - first + 1 is enough). Each column is an array of cap entries, or NULL to skip it. pos
 * identifies a record's payload for mmj_reader_gather (valid while the reader is open). */
int mmj_reader_scan(const mmj_reader *r /* reader */, uint64_t first /* first seq */,
                    uint64_t last /* last seq */, uint64_t cap /* rows that fit in each column */,
                    uint64_t *seq /* OUT: sequences, or NULL */, uint16_t *rtype /* OUT: types, or NULL */,
                    int64_t *ts_ns /* OUT: timestamps, or NULL */, uint8_t *ts_source /* OUT: or NULL */,
                    uint8_t *clock_state /* OUT: or NULL */, uint32_t *length /* OUT: payload lengths, or NULL */,
                    uint64_t *pos /* OUT: payload handles, or NULL */, uint64_t *rows /* OUT: rows filled */);
/* Copy the first `size` payload bytes of n records (pos from mmj_reader_scan) to out, record k
 * at out + k * stride; with_header puts the 20-byte row header of mmj_reader_read_fixed before
 * each payload. A payload shorter than size gives MMJ_E_PAYLOAD_SIZE. */
int mmj_reader_gather(const mmj_reader *r /* reader */, const uint64_t *pos /* n payload handles */,
                      uint64_t n /* count */, uint64_t size /* payload bytes per record */,
                      char *out /* OUT: n rows */, uint64_t stride /* bytes between rows */,
                      int with_header /* 1: row header, then payload */);

/* ---- tailer --------------------------------------------------------------------------- */

/* Follow a live journal from another process. name (may be NULL) makes the tailer named: its
 * position is loaded from tailers/<name>.pos when from_seq is 0 and saved by mmj_tailer_commit.
 * from_seq 0 and no saved position starts at the first record.
 * TAILERS: records are never taken back, except by a writer's recovery cutting the journal at
 * damage or a power cut's torn tail, after which it writes new records with the same sequences.
 * A tailer never hands those out as if they followed what it had read: it remembers the head
 * (word and crc) of the last record it handed out, saves it with a named position (with the
 * journal id), and checks that record again where it may have been cut: when a named position is
 * loaded, when the bytes behind its position were rewritten, and (at most every 10 ms while it
 * finds nothing new) when its segment's file was replaced or removed. A record that is gone or
 * different gives MMJ_E_POSITION_LOST: the consumer decides where to resume (from_seq). A tailer
 * never takes a gap for the end: a missing segment gives MMJ_E_SEGMENTS_MISSING, an unsealed
 * segment the journal goes on after MMJ_E_CORRUPT (THE END OF THE JOURNAL; mmj_tailer_stop). */
int mmj_tailer_open(const char *dir /* journal directory */, const char *name /* or NULL */,
                    uint64_t from_seq /* first sequence wanted, 0 for saved/first */,
                    mmj_tailer **out /* OUT: tailer */, int *err /* OUT: errno; may be NULL */);
/* The next data record, waiting up to timeout_ns (0 polls once); MMJ_AGAIN on timeout. */
int mmj_tailer_next(mmj_tailer *t /* tailer */, int64_t timeout_ns /* wait budget */,
                    mmj_record *out /* OUT: the record, valid until the next call */);
/* Bound how long mmj_tailer_next with a timeout spins (polling) before it sleeps on the writer's
 * wake-up word; default 0: it sleeps after a few polls (no CPU burnt while waiting). With a bound
 * it spins while recent waits averaged at most the bound (records come often enough that the spin
 * covers the gap: a visibility of a few hundred ns instead of a futex wake-up's microseconds, at
 * the cost of a CPU busy while records flow); rarer records are waited for asleep. For consumers
 * on a CPU of their own. */
int mmj_tailer_set_spin(mmj_tailer *t /* tailer */, int64_t max_ns /* spin bound, ns */);
/* The sequence the next mmj_tailer_next will return. */
uint64_t mmj_tailer_position(const mmj_tailer *t /* tailer */);
/* Where the last mmj_tailer_next that failed with MMJ_E_CORRUPT or MMJ_E_SEGMENTS_MISSING stopped
 * (reason MMJ_R_NONE otherwise): an invalid record or segment header (segment, offset), a segment
 * missing in front of later ones or where LOCK names another end (MMJ_R_MISSING_SEGMENT, segment =
 * the first index missing, offset 0), or an unsealed segment the journal goes on after
 * (MMJ_R_NO_EOS, where its data ends). See TAILERS. */
void mmj_tailer_stop(const mmj_tailer *t /* tailer */, int32_t *reason /* OUT */,
                     uint64_t *segment /* OUT */, uint64_t *offset /* OUT */);
/* Atomically save the position of a named tailer. */
int mmj_tailer_commit(mmj_tailer *t /* tailer */);
/* Unmap and free (NULL is a no-op). */
void mmj_tailer_close(mmj_tailer *t /* tailer */);

/* ---- verify and inspection -------------------------------------------------------------- */

/* Check every segment, record, checkpoint and seal, and the end against LOCK (THE END OF THE
 * JOURNAL); report the first problem. With the writer live, a segment without EOS followed only by
 * a segment that holds nothing yet is a roll in progress: verify ends there (last_sealed 0). */
int mmj_verify(const char *dir /* journal directory */, mmj_verify_report *out /* OUT: report */,
               int *err /* OUT: errno; may be NULL */);
/* Who holds the writer lock: live = 1 if a process holds it now; pid and clean from LOCK. */
int mmj_lock_probe(const char *dir /* journal directory */, int32_t *live /* OUT */,
                   int32_t *pid /* OUT */, int32_t *clean /* OUT */);
/* The journal's salt from journal.meta. */
int mmj_read_salt(const char *dir /* journal directory */, uint8_t *out /* OUT: 16 bytes */);

/* ---- salvage (SALVAGE) ------------------------------------------------------------------ */

/* A byte range of a file. */
typedef struct mmj_byte_range {
    uint64_t offset;           /* its first byte */
    uint64_t length;           /* bytes */
} mmj_byte_range;

/* What mmj_salvage_segment found in one segment file. */
typedef struct mmj_salvage_report {
    int32_t header_reason;     /* MMJ_R_NONE, or MMJ_R_BAD_HEADER: crc, version, header size or salt */
    uint32_t version;          /* the header's format version */
    uint64_t index;            /* the header's segment index: records are checked with its salt check */
    uint64_t first_seq;        /* the header's first sequence */
    uint64_t size;             /* the header's segment size S */
    uint64_t file_size;        /* the file's size: a kept copy of a damaged segment is shorter than S */
    uint64_t records;          /* records that validate, all of them (also those past cap_records) */
    uint64_t invalid;          /* invalid ranges, all of them (also those past cap_invalid) */
} mmj_salvage_report;

/* Read a segment file kept in discarded/ (or any segment file) without its journal (SALVAGE):
 * the records that validate, in file order, into records (at most cap_records; payload is NULL,
 * the file being unmapped on return: the payload is the `length` bytes at offset + 32 of the file,
 * zeros past its end; flags tell CHECKPOINT/SEAL (MMJ_FLAG_CONTROL) and EOS (MMJ_FLAG_EOS) from
 * data records; segment is the header's index), and the ranges between them where nothing
 * validates into invalid (at most cap_invalid). The report counts all of both, so a first call
 * with both caps 0 sizes the arrays. MMJ_OK; MMJ_E_CORRUPT for a file shorter than a segment
 * header or without the segment magic; MMJ_E_VERSION for an intact header of a newer format;
 * MMJ_E_IO when the file cannot be opened or mapped (err says why); MMJ_E_ARG for a NULL path,
 * salt or out. */
int mmj_salvage_segment(const char *path /* segment file */,
                        const uint8_t *salt /* the journal's 16-byte salt (mmj_read_salt) */,
                        mmj_record *records /* OUT: records that validate, or NULL */,
                        uint64_t cap_records /* entries that fit in records */,
                        mmj_byte_range *invalid /* OUT: ranges where none validates, or NULL */,
                        uint64_t cap_invalid /* entries that fit in invalid */,
                        mmj_salvage_report *out /* OUT: header fields and counts */,
                        int *err /* OUT: errno of a failed system call; may be NULL */);

#ifdef __cplusplus
}
#endif

#endif /* MMJ_JOURNAL_H */
