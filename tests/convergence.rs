//! Property tests: any interleaving of concurrent edits from simulated clients (each following
//! the client rule) converges to the server's text on every client, including across reconnects.

mod common;

use std::collections::VecDeque;

use common::{session, SimClient};
use proptest::prelude::*;
use serde_json::Value;
use sidechain_edge::ot::text::TextPrimitive;
use sidechain_edge::model::{NoLookup, Session};
use sidechain_edge::room::TextRoom as Room;

/// SplitMix64: a tiny deterministic generator driven by the proptest seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

fn random_edit(rng: &mut Rng, len: usize) -> TextPrimitive {
    const WORDS: [&str; 6] = ["a", "bc", "é", "👋", "xyz", " "];
    if len > 0 && rng.below(3) == 0 {
        let position = rng.below(len as u64) as usize;
        let length = 1 + rng.below((len - position).min(4) as u64) as usize;
        TextPrimitive::Delete { position, length }
    } else {
        let position = rng.below(len as u64 + 1) as usize;
        TextPrimitive::Insert { position, content: WORDS[rng.below(6) as usize].to_string() }
    }
}

fn frames(out: &[sidechain_edge::protocol::Outgoing]) -> Vec<Value> {
    out.iter().map(|o| serde_json::from_str(&o.to_frame("x", 0)).unwrap()).collect()
}

struct World {
    room: Room,
    clients: Vec<SimClient>,
    to_server: Vec<VecDeque<String>>,
    to_client: Vec<VecDeque<Value>>,
    now: u64,
}

impl World {
    fn new(n: usize) -> Self {
        World {
            room: Room::new("doc"),
            clients: (0..n).map(|i| SimClient::new(session(i, true))).collect(),
            to_server: vec![VecDeque::new(); n],
            to_client: vec![VecDeque::new(); n],
            now: 1,
        }
    }

    fn sessions(&self) -> Vec<Session> {
        self.clients.iter().map(|c| c.session.clone()).collect()
    }

    fn server_step(&mut self, i: usize) {
        let Some(frame) = self.to_server[i].pop_front() else { return };
        self.now += 1;
        let present = self.sessions();
        let fx = self.room.on_frame(&self.clients[i].session, &frame, self.now, &present, &NoLookup);
        self.to_client[i].extend(frames(&fx.to_sender));
        for (j, q) in self.to_client.iter_mut().enumerate() {
            if j != i {
                q.extend(frames(&fx.to_others));
            }
        }
    }

    fn client_step(&mut self, i: usize) -> Result<(), String> {
        if let Some(msg) = self.to_client[i].pop_front() {
            self.clients[i].receive(&msg)?;
        }
        Ok(())
    }

    /// Drops the socket: frames in flight either reach the server first or are lost, everything
    /// queued for the client is lost; then the client catches up with `since` and resends.
    fn reconnect(&mut self, i: usize, deliver_outbound: bool) -> Result<(), String> {
        if deliver_outbound {
            while !self.to_server[i].is_empty() {
                self.server_step(i);
            }
        }
        self.to_server[i].clear();
        self.to_client[i].clear();
        let me = self.clients[i].session.clone();
        let replay = self.room.catch_up(&me, Some(self.clients[i].version), &self.sessions(), None);
        for m in frames(&replay) {
            self.clients[i].receive(&m)?;
        }
        if let Some(f) = self.clients[i].resend() {
            self.to_server[i].push_back(f);
        }
        Ok(())
    }

    fn quiesce(&mut self) -> Result<(), String> {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..self.clients.len() {
                if let Some(f) = self.clients[i].flush() {
                    self.to_server[i].push_back(f);
                }
                if !self.to_server[i].is_empty() {
                    self.server_step(i);
                    moved = true;
                }
                while !self.to_client[i].is_empty() {
                    self.client_step(i)?;
                    moved = true;
                }
            }
            if !moved {
                return Ok(());
            }
        }
        Err("did not quiesce".into())
    }
}

fn simulate(seed: u64, clients: usize, steps: usize, reconnects: bool) -> Result<(), String> {
    let mut rng = Rng(seed);
    let mut w = World::new(clients);
    for _ in 0..steps {
        let i = rng.below(clients as u64) as usize;
        match rng.below(if reconnects { 9 } else { 8 }) {
            0..=2 => {
                let len = w.clients[i].len();
                let edit = random_edit(&mut rng, len);
                w.clients[i].local_edit(edit);
            }
            3 => {
                if let Some(f) = w.clients[i].flush() {
                    w.to_server[i].push_back(f);
                }
            }
            4 | 5 => w.server_step(i),
            6 | 7 => w.client_step(i)?,
            _ => {
                let deliver = rng.below(2) == 0;
                w.reconnect(i, deliver)?;
            }
        }
    }
    w.quiesce()?;
    let server = w.room.content();
    for c in &w.clients {
        if c.text != server {
            return Err(format!("{} has {:?}, server has {:?}", c.session.client_id, c.text, server));
        }
        if c.version != w.room.version() {
            return Err(format!("{} at version {}, server at {}", c.session.client_id, c.version, w.room.version()));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn concurrent_clients_converge(seed in any::<u64>(), clients in 2usize..5, steps in 10usize..120) {
        prop_assert_eq!(simulate(seed, clients, steps, false), Ok(()));
    }

    #[test]
    fn clients_converge_across_reconnects(seed in any::<u64>(), clients in 2usize..4, steps in 10usize..120) {
        prop_assert_eq!(simulate(seed, clients, steps, true), Ok(()));
    }
}
