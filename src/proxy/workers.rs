//! Serve workers: one thread per core, each running a current-thread runtime that serves
//! whole client connections, with upstream connection pools of its own.
//!
//! On one shared multi-thread runtime, a request, its primary leg, its shadow and the
//! pooled upstream connections they use were spread over the runtime's threads: a shadow
//! spawned on one thread woke another to steal it, and a pooled connection was driven by
//! whichever thread its task last ran on. Here everything a client connection starts stays
//! on its worker's thread: no task is stolen, no wake-up on the request path crosses
//! threads, and a connection's state stays in one core's cache. nginx's worker processes
//! make the same trade. The figures are in `bench/README.md`.
//!
//! The accept loop (with the connection cap), the admin endpoint, signals and the drain
//! stay on the caller's runtime; accepted connections are handed to the workers in turn.
//! A worker that is gone (it cannot be, short of a bug) gives its connections back, and
//! the accept loop serves them on its own runtime instead.

use super::listener::{self, Accepted, ListenerSettings};
use super::Proxy;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How many idle connections each worker's pools keep. A connection that comes back to a
/// full pool is closed, so a pool smaller than its leg's concurrency makes every request
/// past it open a new connection: with a 200 ms secondary, 15% of shadows did. So the caps
/// follow the limits that bound each leg's concurrency, split over the workers, which
/// keeps the total within the file descriptors [`super::listener::default_max_connections`]
/// set aside: the primary's by `--max-connections` (one primary request per client
/// connection at a time, more only over HTTP/2), the secondary's by `--max-inflight`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSizes {
    pub primary: usize,
    pub secondary: usize,
}

impl PoolSizes {
    pub fn split(workers: usize, max_connections: usize, max_inflight: usize) -> PoolSizes {
        let workers = workers.max(1);
        PoolSizes {
            primary: max_connections.div_ceil(workers).max(1),
            secondary: max_inflight.div_ceil(workers).max(1),
        }
    }
}

/// The running workers.
pub(super) struct Workers {
    queues: Vec<mpsc::UnboundedSender<Accepted>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    next: usize,
}

/// How many workers serve: one per core this process may run on (its CPU affinity and
/// cgroup quota included), at least one.
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Workers {
    /// Starts `count` workers, each with a copy of `proxy` that has its own upstream pools.
    pub(super) fn start(
        count: usize,
        proxy: &Proxy,
        settings: &Arc<ListenerSettings>,
    ) -> std::io::Result<Workers> {
        let count = count.max(1);
        let pools = PoolSizes::split(
            count,
            settings.max_connections,
            proxy.config.shadow.max_inflight,
        );
        let mut workers = Workers {
            queues: Vec::with_capacity(count),
            threads: Vec::with_capacity(count),
            next: 0,
        };
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (queue, accepted) = mpsc::unbounded_channel();
            let worker = Worker {
                proxy: Arc::new(proxy.for_worker(pools)),
                settings: settings.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("shadowdiff-w{index}"))
                .spawn(move || worker.run(runtime, accepted))?;
            workers.queues.push(queue);
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// Hands a connection to the next worker in turn; gives it back if that worker is gone.
    pub(super) fn dispatch(&mut self, accepted: Accepted) -> Result<(), Accepted> {
        let index = self.next % self.queues.len();
        self.next = self.next.wrapping_add(1);
        self.queues[index].send(accepted).map_err(|e| e.0)
    }

    /// Stops the workers once the drain is over: each finishes when its queue closes, and
    /// its runtime, dropped, ends whatever still runs there (connections past the drain
    /// timeout, the pools' idle connections). Returns when every thread has exited, so
    /// that their handles on the pipeline are gone before it is finished.
    pub(super) async fn finish(self) {
        drop(self.queues);
        let threads = self.threads;
        let joined = tokio::task::spawn_blocking(move || {
            threads
                .into_iter()
                .map(|thread| thread.join())
                .filter(Result::is_err)
                .count()
        })
        .await;
        match joined {
            Ok(0) => {}
            Ok(panicked) => tracing::error!(panicked, "serve workers panicked"),
            Err(error) => tracing::error!(%error, "waiting for the serve workers failed"),
        }
    }
}

/// One worker's share of the proxy.
struct Worker {
    proxy: Arc<Proxy>,
    settings: Arc<ListenerSettings>,
}

impl Worker {
    fn run(
        self,
        runtime: tokio::runtime::Runtime,
        mut accepted: mpsc::UnboundedReceiver<Accepted>,
    ) {
        let Worker { proxy, settings } = self;
        runtime.block_on(async move {
            let builder = listener::http_builder(&settings);
            while let Some(accepted) = accepted.recv().await {
                listener::spawn_connection(accepted, &proxy, &settings, &builder);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_caps_split_the_connection_limits_over_the_workers_rounding_up() {
        assert_eq!(
            PoolSizes::split(2, 352, 1024),
            PoolSizes {
                primary: 176,
                secondary: 512
            }
        );
        assert_eq!(
            PoolSizes::split(3, 10, 8192),
            PoolSizes {
                primary: 4,
                secondary: 2731
            }
        );
        assert_eq!(
            PoolSizes::split(0, 0, 0),
            PoolSizes {
                primary: 1,
                secondary: 1
            }
        );
    }
}
