//! The retained operation log of a room: the newest operations, bounded by count and by bytes,
//! each with what its document kind caches for later transforms. Versions are contiguous, so an
//! operation is found by index, not by a scan.

use std::collections::VecDeque;
use std::rc::Rc;

use super::LogEntry;
use crate::limits;

pub struct OpLog<C> {
    entries: VecDeque<(Rc<LogEntry>, C)>,
    bytes: usize,
}

impl<C> Default for OpLog<C> {
    fn default() -> Self {
        OpLog { entries: VecDeque::new(), bytes: 0 }
    }
}

impl<C> OpLog<C> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes the retained entries take, as counted for the budget.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn last(&self) -> Option<&LogEntry> {
        self.entries.back().map(|(e, _)| &**e)
    }

    /// Appends the next version and trims the oldest entries beyond the budgets (the newest one
    /// always stays).
    pub fn push(&mut self, entry: Rc<LogEntry>, cached: C) {
        debug_assert!(self.last().is_none_or(|l| l.version + 1 == entry.version));
        self.bytes += entry.weight();
        self.entries.push_back((entry, cached));
        while self.entries.len() > 1
            && (self.entries.len() as u64 > limits::LOG_RETAINED_OPS || self.bytes > limits::LOG_RETAINED_BYTES)
        {
            if let Some((old, _)) = self.entries.pop_front() {
                self.bytes -= old.weight();
            }
        }
    }

    /// Puts older entries (oldest first, ending just before the log's first) in front while the
    /// budgets allow; false when some did not fit.
    pub fn prepend(&mut self, older: Vec<(Rc<LogEntry>, C)>) -> bool {
        for (entry, cached) in older.into_iter().rev() {
            let fits = (self.entries.len() as u64) < limits::LOG_RETAINED_OPS && self.bytes + entry.weight() <= limits::LOG_RETAINED_BYTES;
            if !fits {
                return false;
            }
            debug_assert!(self.entries.front().is_none_or(|(f, _)| entry.version + 1 == f.version));
            self.bytes += entry.weight();
            self.entries.push_front((entry, cached));
        }
        true
    }

    /// Oldest version `v` such that every op after `v` is held; `current` when the log is empty.
    pub fn oldest_replayable(&self, current: u64) -> u64 {
        self.entries.front().map_or(current, |(e, _)| e.version - 1)
    }

    fn index_of(&self, version: u64) -> Option<usize> {
        let first = self.entries.front()?.0.version;
        let i = usize::try_from(version.checked_sub(first)?).ok()?;
        (i < self.entries.len()).then_some(i)
    }

    pub fn get(&self, version: u64) -> Option<&(Rc<LogEntry>, C)> {
        self.index_of(version).map(|i| &self.entries[i])
    }

    /// The entries with a version above `version` (all of them when it is older than the log).
    pub fn after(&self, version: u64) -> impl Iterator<Item = &(Rc<LogEntry>, C)> {
        let start = match self.entries.front() {
            Some((first, _)) if version >= first.version => (version - first.version + 1) as usize,
            _ => 0,
        };
        self.entries.range(start.min(self.entries.len())..)
    }
}
