//! Open connections per client address: WebSockets and `POST /events` requests in flight count
//! against `[server] max_connections_per_address`, so one host cannot take every connection.
//!
//! The address is the TCP peer's: behind a proxy or ingress every client shares the proxy's
//! address (forwarded headers are not trusted, as any client can set them); raise the cap or set
//! 0 there, and limit at the proxy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The open connections of every client address.
#[derive(Debug)]
pub struct PerAddress {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of an address; dropping it closes it.
#[derive(Debug)]
pub struct Slot {
    owner: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    /// At most `max` open connections per address (0: no limit).
    pub fn new(max: usize) -> Arc<PerAddress> {
        Arc::new(PerAddress {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `ip`, or `Err(open)` when the address has its most already.
    /// Without a limit, or an address, there is nothing to count (`Ok(None)`).
    pub fn take(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Option<Slot>, usize> {
        let Some(ip) = ip.filter(|_| self.max > 0) else {
            return Ok(None);
        };
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return Err(*n);
        }
        *n += 1;
        Ok(Some(Slot {
            owner: Arc::clone(self),
            ip,
        }))
    }

    /// Open connections of `ip` now.
    #[cfg(test)]
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&ip).copied().unwrap_or(0)
    }

    /// The limit (0: none).
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .owner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_slots_until_they_are_dropped() {
        let per = PerAddress::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let one = per.take(Some(a)).unwrap();
        let two = per.take(Some(a)).unwrap();
        assert_eq!(per.take(Some(a)).unwrap_err(), 2);
        assert!(
            per.take(Some(b)).unwrap().is_some(),
            "other addresses are not affected"
        );
        drop(one);
        assert_eq!(per.open(a), 1);
        let _three = per.take(Some(a)).unwrap();
        drop(two);
        assert!(
            per.take(None).unwrap().is_none(),
            "no address, nothing to count"
        );
        let unlimited = PerAddress::new(0);
        for _ in 0..10 {
            assert!(unlimited.take(Some(a)).unwrap().is_none());
        }
    }
}
