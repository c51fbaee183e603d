//! One compactor per bucket, elected through the bucket itself (docs/adr/0022,
//! docs/format/bucket.md): a lease kept as a chain of objects `lease/compactor-<gen>.json`,
//! each written with a create-only put (`If-None-Match: *`), so of two instances writing the
//! next generation exactly one succeeds. Create-only because `object_store`'s local file
//! system has no `If-Match` update; one mechanism serves S3, MinIO, R2 and a shared disk.
//!
//! - **Take a free lease**: no generation yet, or the newest one released → write the next.
//! - **Renew**: the holder writes the next generation every third of the lease's time.
//! - **Take over**: an instance that has seen the same newest generation for a whole
//!   lease time on its own monotonic clock writes the next one. No wall clocks are compared
//!   between machines.
//! - **Fencing by time**: the holder counts its lease valid until two thirds of the lease
//!   time after it *began* the write that renewed it; a taker waits the whole time after it
//!   *saw* that write. Compaction and retention act only while the lease is valid, and a
//!   compaction checks it again before it makes its block visible (the bucket index write).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::blobs::BlobStore;
use crate::{Error, cluster::now_ns};

/// The lease's directory under the common prefix.
pub const LEASE_DIR: &str = "lease";
/// The version of the lease object's format.
pub const LEASE_VERSION: u32 = 1;
/// Generations kept behind the newest (older ones are deleted by the holder).
const KEEP: u64 = 16;

/// One generation of the lease (`lease/compactor-<generation, 20 digits>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub version: u32,
    /// Its generation (also in the object's name).
    pub generation: u64,
    /// The instance holding it; "" = released (free at once).
    pub holder: String,
    /// The generation at which the holder took the lease (its tenure; unchanged by
    /// renewals). Blocks it compacts carry it.
    pub term: u64,
    /// How long the lease lasts after this generation was written unless renewed (ms).
    pub ttl_ms: u64,
    /// When it was written, by the holder's clock (Unix ns), for people reading it.
    pub written_ns: i64,
}

/// The name of generation `g`.
pub fn lease_name(g: u64) -> String {
    format!("{LEASE_DIR}/compactor-{g:020}.json")
}

fn generation_of(file: &str) -> Option<u64> {
    let digits = file.strip_prefix("compactor-")?.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Parses a lease object, with an error naming what is wrong.
pub fn parse_lease(name: &str, bytes: &[u8]) -> Result<LeaseRecord, Error> {
    let r: LeaseRecord = serde_json::from_slice(bytes)
        .map_err(|e| Error::Io(std::io::Error::other(format!("lease {name}: {e}"))))?;
    if r.version != LEASE_VERSION {
        return Err(Error::Io(std::io::Error::other(format!(
            "lease {name}: version {} (this gocost reads {LEASE_VERSION})",
            r.version
        ))));
    }
    Ok(r)
}

/// The lease as one instance sees it.
#[derive(Debug)]
pub(crate) struct Lease {
    instance: String,
    ttl: Duration,
    /// The newest generation seen, and when it was first seen (this clock).
    seen: Option<(u64, Instant)>,
    held: Option<Held>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    generation: u64,
    term: u64,
    /// Renew from here on.
    renew_at: Instant,
    /// Compaction and retention stop here unless renewed.
    valid_until: Instant,
}

/// What [`Lease::tick`] did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEvent {
    /// Nothing changed (held and renewed, or held by another and not expired).
    Unchanged,
    /// This instance took the lease (term = its generation).
    Taken { generation: u64, from: String },
    /// This instance lost it (another wrote the next generation, or renewing failed for
    /// too long).
    Lost { why: String },
}

impl Lease {
    pub(crate) fn new(instance: &str, ttl: Duration) -> Lease {
        Lease {
            instance: instance.to_string(),
            ttl,
            seen: None,
            held: None,
        }
    }

    /// The term this instance holds the lease in, if it holds it now.
    pub(crate) fn valid_term(&self, now: Instant) -> Option<u64> {
        self.held
            .filter(|h| now < h.valid_until)
            .map(|h| h.term.max(1))
    }

    /// How much longer the lease is valid (zero if not held).
    pub(crate) fn remaining(&self, now: Instant) -> Duration {
        self.held.map_or(Duration::ZERO, |h| {
            h.valid_until.saturating_duration_since(now)
        })
    }

    /// Looks at the newest generation and takes, renews or gives up the lease.
    pub(crate) fn tick(&mut self, blobs: &dyn BlobStore) -> Result<LeaseEvent, Error> {
        let now = Instant::now();
        if let Some(h) = self.held
            && now >= h.valid_until
        {
            self.held = None;
            self.seen = Some((h.generation, now));
            return Ok(LeaseEvent::Lost {
                why: "it could not be renewed in time".into(),
            });
        }
        let newest = blobs
            .list_dir(LEASE_DIR)?
            .iter()
            .filter_map(|l| generation_of(&l.name))
            .max();
        if let Some(h) = self.held {
            if newest != Some(h.generation) {
                self.held = None;
                self.seen = newest.map(|g| (g, now));
                return Ok(LeaseEvent::Lost {
                    why: format!(
                        "generation {} was written by another instance",
                        newest.map_or_else(|| "none".into(), |g| g.to_string())
                    ),
                });
            }
            if now < h.renew_at {
                return Ok(LeaseEvent::Unchanged);
            }
            return match self.write(blobs, h.generation + 1, h.term)? {
                Some(held) => {
                    self.held = Some(held);
                    self.delete_old(blobs, held.generation);
                    Ok(LeaseEvent::Unchanged)
                }
                None => {
                    self.held = None;
                    self.seen = None;
                    Ok(LeaseEvent::Lost {
                        why: format!(
                            "another instance wrote generation {} first",
                            h.generation + 1
                        ),
                    })
                }
            };
        }
        // Not held: free, released or expired?
        let (next, from) = match newest {
            None => (1, String::new()),
            Some(g) => {
                let name = lease_name(g);
                let Some(bytes) = blobs.get(&name)? else {
                    return Ok(LeaseEvent::Unchanged); // deleted since the listing: next time
                };
                // One that does not parse (or names another generation) is held by no one
                // known: it expires after this instance's lease time like any other.
                let rec = parse_lease(&name, &bytes).and_then(|r| {
                    if r.generation == g {
                        Ok(r)
                    } else {
                        Err(Error::Io(std::io::Error::other(format!(
                            "lease {name}: says generation {}",
                            r.generation
                        ))))
                    }
                });
                let rec = rec.unwrap_or_else(|e| {
                    tracing::warn!("{e} (taken over after the lease time)");
                    LeaseRecord {
                        version: LEASE_VERSION,
                        generation: g,
                        holder: "?".into(),
                        term: g,
                        ttl_ms: 0,
                        written_ns: 0,
                    }
                });
                let first_seen = match self.seen {
                    Some((sg, at)) if sg == g => at,
                    _ => {
                        self.seen = Some((g, now));
                        now
                    }
                };
                // The holder's lease time, at least this instance's: an expiry is never
                // judged sooner than the holder counts it.
                let ttl = Duration::from_millis(rec.ttl_ms).max(self.ttl);
                let expired = now.duration_since(first_seen) >= ttl;
                if !rec.holder.is_empty() && !expired {
                    return Ok(LeaseEvent::Unchanged);
                }
                (g + 1, rec.holder)
            }
        };
        match self.write(blobs, next, next)? {
            Some(held) => {
                self.held = Some(held);
                self.delete_old(blobs, next);
                Ok(LeaseEvent::Taken {
                    generation: next,
                    from,
                })
            }
            None => {
                self.seen = None;
                Ok(LeaseEvent::Unchanged)
            }
        }
    }

    /// Writes generation `g` held by this instance; `None`: another wrote it first.
    fn write(&self, blobs: &dyn BlobStore, g: u64, term: u64) -> Result<Option<Held>, Error> {
        let rec = LeaseRecord {
            version: LEASE_VERSION,
            generation: g,
            holder: self.instance.clone(),
            term,
            ttl_ms: self.ttl.as_millis() as u64,
            written_ns: now_ns(),
        };
        let bytes = serde_json::to_vec(&rec)
            .map_err(|e| Error::Io(std::io::Error::other(format!("lease: {e}"))))?;
        // Measured from before the write: a taker saw it only after it landed.
        let began = Instant::now();
        if !blobs.put_new(&lease_name(g), &bytes)? {
            return Ok(None);
        }
        Ok(Some(Held {
            generation: g,
            term,
            renew_at: began + self.ttl / 3,
            valid_until: began + self.ttl * 2 / 3,
        }))
    }

    /// Gives the lease up at once (a clean shutdown): the next generation says "released".
    pub(crate) fn release(&mut self, blobs: &dyn BlobStore) -> Result<bool, Error> {
        let Some(h) = self.held.take() else {
            return Ok(false);
        };
        let rec = LeaseRecord {
            version: LEASE_VERSION,
            generation: h.generation + 1,
            holder: String::new(),
            term: h.term,
            ttl_ms: self.ttl.as_millis() as u64,
            written_ns: now_ns(),
        };
        let bytes = serde_json::to_vec(&rec)
            .map_err(|e| Error::Io(std::io::Error::other(format!("lease: {e}"))))?;
        blobs.put_new(&lease_name(h.generation + 1), &bytes)
    }

    /// Deletes generations older than the newest [`KEEP`] (failures are harmless: the next
    /// renewal tries again).
    fn delete_old(&self, blobs: &dyn BlobStore, newest: u64) {
        let Ok(listed) = blobs.list_dir(LEASE_DIR) else {
            return;
        };
        for g in listed.iter().filter_map(|l| generation_of(&l.name)) {
            if g + KEEP <= newest {
                let _ = blobs.delete(&lease_name(g));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::ObjectBlobs;
    use std::sync::Arc;

    fn memory() -> ObjectBlobs {
        ObjectBlobs::with_store(
            Arc::new(object_store::memory::InMemory::new()),
            "p",
            "memory".into(),
            None,
        )
        .unwrap()
    }

    #[test]
    fn one_instance_takes_a_free_lease_and_renews_it() {
        let blobs = memory();
        assert!(crate::blobs::probe_conditional_put(&blobs, "lease/probe").unwrap());
        let ttl = Duration::from_secs(3);
        let (mut a, mut b) = (Lease::new("a", ttl), Lease::new("b", ttl));
        assert_eq!(
            a.tick(&blobs).unwrap(),
            LeaseEvent::Taken {
                generation: 1,
                from: String::new()
            }
        );
        assert_eq!(b.tick(&blobs).unwrap(), LeaseEvent::Unchanged);
        assert_eq!(a.valid_term(Instant::now()), Some(1));
        assert_eq!(b.valid_term(Instant::now()), None);
        // Renewed while b waits: b never takes it.
        for _ in 0..12 {
            std::thread::sleep(ttl / 8);
            assert_eq!(a.tick(&blobs).unwrap(), LeaseEvent::Unchanged);
            assert_eq!(b.tick(&blobs).unwrap(), LeaseEvent::Unchanged);
            assert!(a.valid_term(Instant::now()).is_some());
            assert!(b.valid_term(Instant::now()).is_none());
        }
        let rec = blobs.list_dir(LEASE_DIR).unwrap();
        assert!(rec.len() as u64 <= KEEP + 1, "old generations are deleted");
    }

    #[test]
    fn a_lease_not_renewed_is_taken_over_after_its_time_and_the_old_holder_knows() {
        let blobs = memory();
        let ttl = Duration::from_millis(200);
        let (mut a, mut b) = (Lease::new("a", ttl), Lease::new("b", ttl));
        assert!(matches!(a.tick(&blobs).unwrap(), LeaseEvent::Taken { .. }));
        // a stops renewing (a pause, a crash). It stops counting itself the holder at two
        // thirds of the time…
        std::thread::sleep(ttl * 2 / 3 + Duration::from_millis(20));
        assert_eq!(a.valid_term(Instant::now()), None);
        // …while b takes over only after a whole lease time from when it saw it.
        assert_eq!(b.tick(&blobs).unwrap(), LeaseEvent::Unchanged);
        std::thread::sleep(ttl + Duration::from_millis(20));
        assert_eq!(
            b.tick(&blobs).unwrap(),
            LeaseEvent::Taken {
                generation: 2,
                from: "a".into()
            }
        );
        assert_eq!(b.valid_term(Instant::now()), Some(2));
        assert!(matches!(a.tick(&blobs).unwrap(), LeaseEvent::Lost { .. }));
        assert_eq!(a.valid_term(Instant::now()), None);
        // Released: taken at once.
        assert!(b.release(&blobs).unwrap());
        assert!(matches!(
            a.tick(&blobs).unwrap(),
            LeaseEvent::Taken { generation: 4, .. }
        ));
    }

    #[test]
    fn a_lease_object_that_does_not_parse_is_taken_over_after_the_lease_time() {
        let blobs = memory();
        blobs.put_new(&lease_name(7), b"not json").unwrap();
        let ttl = Duration::from_millis(100);
        let mut a = Lease::new("a", ttl);
        assert_eq!(a.tick(&blobs).unwrap(), LeaseEvent::Unchanged);
        std::thread::sleep(ttl + Duration::from_millis(20));
        assert_eq!(
            a.tick(&blobs).unwrap(),
            LeaseEvent::Taken {
                generation: 8,
                from: "?".into()
            }
        );
    }

    #[test]
    fn two_instances_racing_for_one_generation_one_wins() {
        let blobs = memory();
        let ttl = Duration::from_secs(60);
        let mut a = Lease::new("a", ttl);
        let b = Lease::new("b", ttl);
        assert!(b.write(&blobs, 1, 1).unwrap().is_some());
        assert!(a.write(&blobs, 1, 1).unwrap().is_none());
        assert_eq!(a.tick(&blobs).unwrap(), LeaseEvent::Unchanged);
    }

    #[test]
    fn lease_objects_from_outside_are_parsed_with_clear_errors() {
        assert!(
            parse_lease("x", b"{")
                .unwrap_err()
                .to_string()
                .contains("lease x")
        );
        let e = parse_lease(
            "x",
            br#"{"version":9,"generation":1,"holder":"a","term":1,"ttl_ms":1,"written_ns":0}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
        assert_eq!(
            generation_of("compactor-00000000000000000042.json"),
            Some(42)
        );
        assert_eq!(generation_of("compactor-42.json"), None);
        assert_eq!(generation_of("probe"), None);
    }
}
