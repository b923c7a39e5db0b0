//! The protocol of one DoT connection with no I/O in it: wire IDs, the
//! queries in flight, their deadlines, matching answers, and when an idle
//! connection should close.
//!
//! Like rustls's `ConnectionCommon`, which tokio-rustls drives, [`Pipeline`]
//! neither reads nor writes nor looks at a clock: the connection task in
//! `transport.rs` hands it queries, frames and the time, writes the bytes
//! it produces, arms one timer for [`Pipeline::next_deadline`] and delivers
//! the replies it gives back. That keeps every rule here testable with
//! made-up times and no runtime, and the task free of protocol decisions.
//!
//! A reply is whatever the driver needs to answer a query (`T`: a oneshot
//! sender in the task, a plain tag in the tests); the pipeline only keeps
//! it and hands it back with the query's outcome.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use bytes::BytesMut;
use foldhash::{HashMap, HashMapExt};
// tokio's Instant rather than std's: it is what the driver's timer takes
// and what a paused test clock moves. Nothing here reads it.
use tokio::time::Instant;

use crate::framing::{self, TooLong};
use crate::policy::{IdlePolicy, PowerState};
use crate::rng::{Random, RngFailed};
use crate::wire::{self, Layout, QuestionKey, Response};

/// The limits a pipeline keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// How long a query may wait for its answer.
    pub query_timeout: Duration,
    /// Queries in flight at most.
    pub max_in_flight: usize,
    /// How long the connection may stay idle, per power state.
    pub idle: IdlePolicy,
}

/// Why a query was not sent. Nothing of it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No random wire ID could be drawn.
    Random(RngFailed),
    /// The message does not fit a 2-byte length.
    TooLong(TooLong),
    /// `max_in_flight` queries are already waiting; the driver should not
    /// have taken another (see [`Pipeline::has_room`]).
    Full,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Random(e) => e.fmt(f),
            Refused::TooLong(e) => e.fmt(f),
            Refused::Full => f.write_str("too many queries in flight"),
        }
    }
}

/// A query sent and not yet answered.
struct Pending<T> {
    key: QuestionKey,
    reply: T,
    /// Its entry in `deadlines`: an ID answered and reused while other
    /// queries were pending leaves a stale entry there, which must not time
    /// out the query that reused it.
    deadline: Instant,
}

/// The state of one connection's queries; see the module documentation.
pub(crate) struct Pipeline<T> {
    /// The connection's number, for logs.
    connection: u64,
    settings: Settings,
    /// Where wire IDs come from (rng.rs).
    random: Random,
    pending: HashMap<u16, Pending<T>>,
    /// Wire IDs in the order sent, with their deadlines. All queries share
    /// one timeout, so this is sorted and the front is the next to expire;
    /// entries at the front that no longer match a pending query are
    /// dropped as soon as they surface, so the front is never stale.
    deadlines: VecDeque<(Instant, u16)>,
    /// The server's edns-tcp-keepalive timeout (RFC 7828), once it sent one.
    server_keepalive: Option<Duration>,
    /// The last query sent or answer matched: the idle time counts from it.
    last_activity: Instant,
}

impl<T> Pipeline<T> {
    /// A pipeline with nothing in flight, idle since `now` (the handshake's
    /// end), for the connection numbered `connection` in logs.
    pub(crate) fn new(connection: u64, settings: Settings, random: Random, now: Instant) -> Self {
        Pipeline {
            connection,
            settings,
            random,
            pending: HashMap::new(),
            deadlines: VecDeque::new(),
            server_keepalive: None,
            last_activity: now,
        }
    }

    /// Whether another query may be submitted: the driver takes no more
    /// from its queue than this allows, so that the queue's bound is felt
    /// by the clients (backpressure).
    pub(crate) fn has_room(&self) -> bool {
        self.pending.len() < self.settings.max_in_flight
    }

    /// Queries waiting for an answer.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Gives `message` a random wire ID not in flight and appends it,
    /// framed, to `out` (the driver writes it); its answer or timeout will
    /// hand back `reply`. Returns the wire ID, or, when the query cannot be
    /// sent, `reply` and why, with `out` untouched.
    pub(crate) fn submit(
        &mut self,
        mut message: Vec<u8>,
        key: QuestionKey,
        reply: T,
        now: Instant,
        out: &mut BytesMut,
    ) -> Result<u16, (T, Refused)> {
        if !self.has_room() {
            return Err((reply, Refused::Full));
        }
        // Every ID random, so that neither the server nor anyone who learns
        // one ID can predict or link the others. One in use is stepped past:
        // at most max_in_flight (< 65536) are, so this ends.
        let mut id = match crate::rng::id(self.random) {
            Ok(id) => id,
            Err(e) => return Err((reply, Refused::Random(e))),
        };
        while self.pending.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        wire::set_id(&mut message, id);
        if let Err(e) = framing::encode(&message, out) {
            return Err((reply, Refused::TooLong(e)));
        }
        self.last_activity = now;
        let deadline = now + self.settings.query_timeout;
        self.deadlines.push_back((deadline, id));
        self.pending.insert(
            id,
            Pending {
                key,
                reply,
                deadline,
            },
        );
        Ok(id)
    }

    /// Takes one frame from the server. Returns the reply of the query it
    /// answers with the answer, `None` when it answers none in flight (an
    /// unknown ID, or the question of another query: ignored, the query
    /// keeps waiting), or why the frame shows the stream cannot be trusted
    /// any more (the driver drops the connection).
    pub(crate) fn on_frame(
        &mut self,
        frame: &[u8],
        now: Instant,
    ) -> Result<Option<(T, Response)>, &'static str> {
        if frame.len() < wire::HEADER_LEN {
            return Err("frame shorter than a DNS header");
        }
        // A frame that is not a DNS response means the stream is not what
        // we think it is; nothing after it can be trusted.
        let layout = Layout::parse(frame).map_err(|_| "undecodable DNS message")?;
        if !wire::is_response(frame) {
            return Err("server sent a query");
        }
        let id = wire::id(frame);
        let Some(pending) = self.pending.get(&id) else {
            log::debug!(
                "connection {}: answer for unknown ID {id} ignored",
                self.connection
            );
            return Ok(None);
        };
        match QuestionKey::of(frame, &layout) {
            Ok(Some(key)) if key.same_question(&pending.key) => {}
            _ => {
                // Possibly a spoof or a confused server; the real answer
                // may still come before the deadline.
                log::warn!(
                    "connection {}: answer {id} does not match its question; ignored",
                    self.connection
                );
                return Ok(None);
            }
        }
        if let Some(t) = wire::keepalive_timeout(frame, &layout) {
            // RFC 7828 §3.1: in units of 100 ms.
            self.server_keepalive = Some(Duration::from_millis(u64::from(t) * 100));
        }
        let Some(pending) = self.pending.remove(&id) else {
            return Ok(None); // looked up just above
        };
        self.last_activity = now;
        self.drop_stale_deadlines();
        Ok(Some((
            pending.reply,
            Response {
                bytes: frame.to_vec(),
                layout,
            },
        )))
    }

    /// Removes the queries whose deadline is at or before `now` and returns
    /// their replies, oldest first, to be failed with a timeout.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<T> {
        let mut expired = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            // Only the query this entry was pushed for, not a later one that
            // reused its ID after it was answered.
            if self
                .pending
                .get(&id)
                .is_some_and(|p| p.deadline == deadline)
            {
                if let Some(p) = self.pending.remove(&id) {
                    expired.push(p.reply);
                }
            }
        }
        self.drop_stale_deadlines();
        expired
    }

    /// When the driver must next call [`expire`](Self::expire) and
    /// [`should_close_idle`](Self::should_close_idle) in `power`: the
    /// oldest query's deadline, or, with nothing in flight, the idle close.
    /// `None` when there is nothing to wait for (an idle timeout too long to
    /// represent): then the driver arms no timer.
    pub(crate) fn next_deadline(&self, power: PowerState) -> Option<Instant> {
        // The front of `deadlines` is never stale, so it is there exactly
        // while queries are in flight, and then there is no idle deadline.
        match self.deadlines.front() {
            Some(&(query, _)) => Some(query),
            None => self.idle_deadline(power),
        }
    }

    /// Whether, at `now` in `power`, the connection has been idle long
    /// enough to close: nothing in flight and its idle timeout passed.
    pub(crate) fn should_close_idle(&self, now: Instant, power: PowerState) -> bool {
        self.idle_deadline(power).is_some_and(|d| now >= d)
    }

    /// Removes every query in flight and returns their replies, to be
    /// failed with why the connection ended.
    pub(crate) fn take_all(&mut self) -> Vec<T> {
        self.deadlines.clear();
        self.pending.drain().map(|(_, p)| p.reply).collect()
    }

    /// When an idle connection closes in `power`; `None` while queries are
    /// in flight (they keep it open until answered or timed out).
    fn idle_deadline(&self, power: PowerState) -> Option<Instant> {
        if !self.pending.is_empty() {
            return None;
        }
        let timeout = self
            .settings
            .idle
            .idle_timeout(power, self.server_keepalive);
        self.last_activity.checked_add(timeout)
    }

    /// Drops deadlines at the front whose query was answered, so that the
    /// timer is not armed for a query that no longer waits.
    fn drop_stale_deadlines(&mut self) {
        while let Some(&(deadline, id)) = self.deadlines.front() {
            if self
                .pending
                .get(&id)
                .is_some_and(|p| p.deadline == deadline)
            {
                break;
            }
            self.deadlines.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn settings() -> Settings {
        Settings {
            query_timeout: TIMEOUT,
            max_in_flight: 4096,
            idle: IdlePolicy::default(),
        }
    }

    /// A generator that always draws 0x1234: IDs only differ by the
    /// pipeline stepping past those in flight, so tests can predict them.
    fn constant(buf: &mut [u8]) -> Result<(), RngFailed> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = if i % 2 == 0 { 0x12 } else { 0x34 };
        }
        Ok(())
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A query for `name` (a single label), and its key.
    fn query(name: &str) -> (Vec<u8>, QuestionKey) {
        let mut message = vec![0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        message.push(name.len() as u8);
        message.extend_from_slice(name.as_bytes());
        message.extend_from_slice(b"\x04test\x00\x00\x01\x00\x01");
        let layout = Layout::parse(&message).unwrap();
        let key = QuestionKey::of(&message, &layout).unwrap().unwrap();
        (message, key)
    }

    /// Submits a query for `name` with reply `tag` and returns the message
    /// as it went out (its wire ID in it).
    fn send(p: &mut Pipeline<u32>, name: &str, tag: u32, now: Instant) -> Vec<u8> {
        let (message, key) = query(name);
        let mut out = BytesMut::new();
        let id = p.submit(message, key, tag, now, &mut out).unwrap();
        let sent = out[2..].to_vec();
        assert_eq!(wire::id(&sent), id);
        assert_eq!(
            usize::from(u16::from_be_bytes([out[0], out[1]])),
            sent.len()
        );
        sent
    }

    /// The server's answer to `sent`: the same message with QR set and,
    /// when given, an edns-tcp-keepalive timeout (units of 100 ms).
    fn answer(sent: &[u8], keepalive: Option<u16>) -> Vec<u8> {
        let mut r = sent.to_vec();
        r[2] |= 0x80;
        if let Some(t) = keepalive {
            r[11] = 1;
            r.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 6, 0, 11, 0, 2]);
            r.extend_from_slice(&t.to_be_bytes());
        }
        r
    }

    #[test]
    fn wire_ids_in_flight_are_random_and_distinct() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        let mut out = BytesMut::new();
        for tag in 0..2000 {
            let (message, key) = query("a");
            p.submit(message, key, tag, now, &mut out).unwrap();
        }
        assert_eq!(p.in_flight(), 2000, "every ID distinct while in flight");
        let mut ids = Vec::new();
        let mut rest = &out[..];
        while let [hi, lo, ..] = *rest {
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            ids.push(u16::from_be_bytes([rest[2], rest[3]]));
            rest = &rest[2 + len..];
        }
        assert_eq!(ids.len(), 2000);
        let steps = ids
            .windows(2)
            .filter(|w| w[1].wrapping_sub(w[0]) == 1)
            .count();
        // Collisions step to the next free ID, so a few steps by one are
        // expected; a counter would make all 1999 of them.
        assert!(steps < 100, "{steps} sequential steps");
    }

    #[test]
    fn an_id_in_flight_is_stepped_past_and_free_again_once_answered() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), constant, now);
        let first = send(&mut p, "a", 1, now);
        let second = send(&mut p, "b", 2, now);
        let third = send(&mut p, "c", 3, now);
        assert_eq!(
            [wire::id(&first), wire::id(&second), wire::id(&third)],
            [0x1234, 0x1235, 0x1236]
        );
        assert!(p.on_frame(&answer(&first, None), now).unwrap().is_some());
        assert_eq!(wire::id(&send(&mut p, "d", 4, now)), 0x1234);
    }

    #[test]
    fn a_failing_random_generator_fails_the_query_unsent() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::failing, now);
        let (message, key) = query("a");
        let mut out = BytesMut::new();
        let refused = p.submit(message, key, 7, now, &mut out);
        assert_eq!(refused, Err((7, Refused::Random(RngFailed))));
        assert!(out.is_empty(), "nothing may be written");
        assert_eq!(p.in_flight(), 0);
        assert_eq!(
            p.next_deadline(PowerState::Interactive),
            Some(now + secs(120))
        );
    }

    #[test]
    fn a_query_too_long_to_frame_is_refused_and_65535_is_sent() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        let (_, key) = query("a");
        let mut out = BytesMut::new();
        let long = vec![0; framing::MAX_MESSAGE + 1];
        let refused = p.submit(long, key.clone(), 1, now, &mut out);
        assert!(matches!(refused, Err((1, Refused::TooLong(_)))));
        assert!(out.is_empty(), "a wrapped length was written");
        assert_eq!(p.in_flight(), 0);

        let longest = vec![0; framing::MAX_MESSAGE];
        p.submit(longest, key, 2, now, &mut out).unwrap();
        assert_eq!(out.len(), framing::MAX_MESSAGE + 2);
        assert_eq!(out[..2], [0xFF, 0xFF]);
        assert_eq!(p.in_flight(), 1);
    }

    #[test]
    fn an_answer_is_matched_by_id_and_question() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        let sent = send(&mut p, "a", 9, now);
        let frame = answer(&sent, None);
        let (tag, got) = p.on_frame(&frame, now + secs(1)).unwrap().unwrap();
        assert_eq!(tag, 9);
        assert_eq!(got.bytes, frame);
        assert_eq!(wire::id(&got.bytes), wire::id(&sent), "still the wire ID");
        assert_eq!(p.in_flight(), 0);
        // Answered once: the same frame again answers nothing.
        assert!(p.on_frame(&frame, now + secs(1)).unwrap().is_none());
    }

    #[test]
    fn an_answer_to_another_question_is_ignored_and_the_query_still_waits() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        let sent = send(&mut p, "a", 1, now);
        let (mut other, _) = query("b");
        wire::set_id(&mut other, wire::id(&sent));
        let spoof = answer(&other, Some(0));
        assert!(p.on_frame(&spoof, now + secs(1)).unwrap().is_none());
        assert_eq!(p.in_flight(), 1);
        assert_eq!(
            p.next_deadline(PowerState::Interactive),
            Some(now + TIMEOUT)
        );
        // The ignored answer taught nothing: its keepalive of 0 would have
        // made the connection close at once after the real answer.
        let real = p.on_frame(&answer(&sent, None), now + secs(2)).unwrap();
        assert_eq!(real.map(|(tag, _)| tag), Some(1));
        assert!(!p.should_close_idle(now + secs(2), PowerState::Interactive));
    }

    #[test]
    fn an_answer_for_an_unknown_id_is_ignored() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        let sent = send(&mut p, "a", 1, now);
        let mut stray = answer(&sent, None);
        wire::set_id(&mut stray, wire::id(&sent).wrapping_add(1));
        assert!(p.on_frame(&stray, now).unwrap().is_none());
        assert_eq!(p.in_flight(), 1);
    }

    #[test]
    fn answers_may_come_out_of_order() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        let sent: Vec<_> = ["a", "b", "c"]
            .iter()
            .zip(1..)
            .map(|(name, tag)| send(&mut p, name, tag, now))
            .collect();
        let mut tags = Vec::new();
        for i in [2, 0, 1] {
            let (tag, _) = p.on_frame(&answer(&sent[i], None), now).unwrap().unwrap();
            tags.push(tag);
        }
        assert_eq!(tags, [3, 1, 2]);
        assert_eq!(p.in_flight(), 0);
    }

    #[test]
    fn a_frame_that_is_no_dns_answer_is_a_protocol_error() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        let sent = send(&mut p, "a", 1, now);
        assert_eq!(
            p.on_frame(&[0; 11], now).err(),
            Some("frame shorter than a DNS header")
        );
        let mut garbage = answer(&sent, None);
        garbage.truncate(garbage.len() - 1);
        assert_eq!(
            p.on_frame(&garbage, now).err(),
            Some("undecodable DNS message")
        );
        assert_eq!(p.on_frame(&sent, now).err(), Some("server sent a query"));
    }

    #[test]
    fn deadlines_expire_in_order_and_only_when_due() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        send(&mut p, "a", 1, now);
        send(&mut p, "b", 2, now + secs(1));
        send(&mut p, "c", 3, now + secs(2));
        assert!(p
            .expire(now + TIMEOUT - Duration::from_millis(1))
            .is_empty());
        assert_eq!(p.expire(now + TIMEOUT + secs(1)), [1, 2]);
        assert_eq!(p.in_flight(), 1);
        assert_eq!(
            p.next_deadline(PowerState::Interactive),
            Some(now + secs(2) + TIMEOUT)
        );
        assert_eq!(p.expire(now + secs(60)), [3]);
        assert!(p.expire(now + secs(60)).is_empty());
        // A query that got no answer still counts as use: the idle time
        // counts from the last one sent.
        assert_eq!(
            p.next_deadline(PowerState::Interactive),
            Some(now + secs(2) + secs(120))
        );
    }

    #[test]
    fn a_reused_id_keeps_its_own_deadline() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), constant, now);
        send(&mut p, "a", 1, now);
        let b = send(&mut p, "b", 2, now + secs(1));
        // b answered while a keeps its deadline entry behind a's.
        assert!(p
            .on_frame(&answer(&b, None), now + secs(2))
            .unwrap()
            .is_some());
        let c = send(&mut p, "c", 3, now + secs(3));
        assert_eq!(wire::id(&c), wire::id(&b), "c reuses b's ID");
        // b's old deadline passes: a expires, c does not.
        assert_eq!(p.expire(now + secs(1) + TIMEOUT), [1]);
        assert_eq!(p.in_flight(), 1);
        assert_eq!(
            p.next_deadline(PowerState::Interactive),
            Some(now + secs(3) + TIMEOUT),
            "no timer for b's stale deadline"
        );
        assert_eq!(p.expire(now + secs(3) + TIMEOUT), [3]);
    }

    #[test]
    fn an_answered_query_leaves_no_deadline_to_wake_for() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        let a = send(&mut p, "a", 1, now);
        send(&mut p, "b", 2, now + secs(1));
        p.on_frame(&answer(&a, None), now + secs(2)).unwrap();
        assert_eq!(
            p.next_deadline(PowerState::Interactive),
            Some(now + secs(1) + TIMEOUT),
            "the timer follows b, not a's answered deadline"
        );
    }

    #[test]
    fn next_deadline_is_the_oldest_query_then_the_idle_close() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        let power = PowerState::Interactive;
        assert_eq!(p.next_deadline(power), Some(now + secs(120)));
        assert!(!p.should_close_idle(now + secs(119), power));
        assert!(p.should_close_idle(now + secs(120), power));

        let a = send(&mut p, "a", 1, now + secs(10));
        // In flight, a query keeps the connection open however long idle.
        assert_eq!(p.next_deadline(power), Some(now + secs(10) + TIMEOUT));
        assert!(!p.should_close_idle(now + secs(500), power));
        // The idle time counts from the answer.
        p.on_frame(&answer(&a, None), now + secs(12)).unwrap();
        assert_eq!(p.next_deadline(power), Some(now + secs(132)));
    }

    #[test]
    fn an_idle_timeout_too_long_to_represent_arms_no_timer() {
        let now = Instant::now();
        let idle = IdlePolicy {
            interactive: Duration::MAX,
            ..IdlePolicy::default()
        };
        let mut p = Pipeline::new(0, Settings { idle, ..settings() }, crate::rng::system, now);
        assert_eq!(p.next_deadline(PowerState::Interactive), None);
        assert!(!p.should_close_idle(now + secs(86_400), PowerState::Interactive));
        send(&mut p, "a", 1, now);
        assert_eq!(
            p.next_deadline(PowerState::Interactive),
            Some(now + TIMEOUT)
        );
        assert_eq!(p.expire(now + TIMEOUT), [1]);
        assert_eq!(p.next_deadline(PowerState::Interactive), None);
    }

    #[test]
    fn the_power_state_sets_the_idle_timeout() {
        let now = Instant::now();
        let p: Pipeline<u32> = Pipeline::new(0, settings(), crate::rng::system, now);
        assert_eq!(
            p.next_deadline(PowerState::Interactive),
            Some(now + secs(120))
        );
        assert_eq!(p.next_deadline(PowerState::Idle), Some(now + secs(5)));
        assert_eq!(p.next_deadline(PowerState::DeepIdle), Some(now));
        assert!(!p.should_close_idle(now + secs(4), PowerState::Idle));
        assert!(p.should_close_idle(now + secs(5), PowerState::Idle));
        assert!(p.should_close_idle(now, PowerState::DeepIdle));
    }

    #[test]
    fn the_server_keepalive_caps_the_idle_timeout() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        // 30 units of 100 ms: 3 s, shorter than all but DeepIdle's 0.
        let a = send(&mut p, "a", 1, now);
        p.on_frame(&answer(&a, Some(30)), now).unwrap();
        assert_eq!(
            p.next_deadline(PowerState::Interactive),
            Some(now + secs(3))
        );
        assert_eq!(p.next_deadline(PowerState::Idle), Some(now + secs(3)));
        assert_eq!(p.next_deadline(PowerState::DeepIdle), Some(now));
        // A longer one does not lengthen ours; the latest one counts.
        let b = send(&mut p, "b", 2, now);
        p.on_frame(&answer(&b, Some(6000)), now).unwrap();
        assert_eq!(
            p.next_deadline(PowerState::Interactive),
            Some(now + secs(120))
        );
        assert_eq!(p.next_deadline(PowerState::Idle), Some(now + secs(5)));
        // 0: the server wants the connection closed once drained.
        let c = send(&mut p, "c", 3, now);
        p.on_frame(&answer(&c, Some(0)), now).unwrap();
        assert!(p.should_close_idle(now, PowerState::Interactive));
    }

    #[test]
    fn the_in_flight_limit_is_kept() {
        let now = Instant::now();
        let limited = Settings {
            max_in_flight: 2,
            ..settings()
        };
        let mut p = Pipeline::new(0, limited, crate::rng::system, now);
        let a = send(&mut p, "a", 1, now);
        send(&mut p, "b", 2, now);
        assert!(!p.has_room());
        let (message, key) = query("c");
        let mut out = BytesMut::new();
        assert_eq!(
            p.submit(message, key, 3, now, &mut out),
            Err((3, Refused::Full))
        );
        assert!(out.is_empty());
        p.on_frame(&answer(&a, None), now).unwrap();
        assert!(p.has_room());
        send(&mut p, "c", 3, now);
    }

    #[test]
    fn take_all_hands_back_every_reply_and_leaves_nothing_to_wait_for() {
        let now = Instant::now();
        let mut p = Pipeline::new(0, settings(), crate::rng::system, now);
        for (name, tag) in [("a", 1), ("b", 2), ("c", 3)] {
            send(&mut p, name, tag, now);
        }
        let mut tags = p.take_all();
        tags.sort_unstable();
        assert_eq!(tags, [1, 2, 3]);
        assert_eq!(p.in_flight(), 0);
        assert_eq!(
            p.next_deadline(PowerState::Interactive),
            Some(now + secs(120))
        );
        assert!(p.expire(now + secs(60)).is_empty());
    }
}
