//! `watchThreds` registrations (spec §4.11): participants told about every thred change.

use std::sync::{Arc, Mutex, MutexGuard};

/// How long a registration lives without `renew`, ms.
pub const WATCH_TTL_MS: i64 = 60_000;

/// One registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// Who is told.
    pub participant: String,
    /// The registration request's id (the `re` of every notification).
    pub re: String,
    /// When it lapses, epoch ms.
    pub expires_at: i64,
}

/// The registrations of one engine process (shared by its workers).
#[derive(Debug, Clone, Default)]
pub struct Watchers(Arc<Mutex<Vec<Watch>>>);

impl Watchers {
    fn lock(&self) -> MutexGuard<'_, Vec<Watch>> {
        match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Registers (or re-registers) `participant`.
    pub fn start(&self, participant: &str, re: &str, now: i64) {
        let mut list = self.lock();
        list.retain(|w| w.participant != participant);
        list.push(Watch {
            participant: participant.into(),
            re: re.into(),
            expires_at: now + WATCH_TTL_MS,
        });
    }

    /// Extends `participant`'s registration; false when it has none.
    pub fn renew(&self, participant: &str, now: i64) -> bool {
        let mut list = self.lock();
        list.retain(|w| w.expires_at > now);
        match list.iter_mut().find(|w| w.participant == participant) {
            Some(w) => {
                w.expires_at = now + WATCH_TTL_MS;
                true
            }
            None => false,
        }
    }

    /// Applies a registration another engine announced: `start` and `renew` (re)register
    /// `participant` from `at`, anything else removes it.
    pub fn apply(&self, participant: &str, re: &str, directive: &str, at: i64) {
        match directive {
            "start" | "renew" => self.start(participant, re, at),
            _ => self.stop(participant),
        }
    }

    /// The id of `participant`'s registration request, if it has one live at `now`.
    pub fn re_of(&self, participant: &str, now: i64) -> Option<String> {
        self.active(now)
            .into_iter()
            .find(|w| w.participant == participant)
            .map(|w| w.re)
    }

    /// Removes `participant`'s registration.
    pub fn stop(&self, participant: &str) {
        self.lock().retain(|w| w.participant != participant);
    }

    /// The live registrations at `now` (lapsed ones are dropped).
    pub fn active(&self, now: i64) -> Vec<Watch> {
        let mut list = self.lock();
        list.retain(|w| w.expires_at > now);
        list.clone()
    }
}
