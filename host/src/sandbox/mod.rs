//! The sandbox: what a plugin may do, and how much it may make the host do and hold
//! for it.
//!
//! - [`policy`]: the per-tenant policy (egress allowlist, memory, time, concurrency,
//!   budgets) as configured.
//! - [`egress`]: the wasi-http send hook: allowlist, address checks, the connection to
//!   the checked address, size cap, deadline.
//! - [`limits`]: the budgets of a run (job data, graph, output, log) and the error
//!   that names the one exceeded.
//! - [`names`]: the patterns the names a plugin declares must match before the host
//!   uses them as folders, types or environment variables.
//! - [`text`]: plugin text on a terminal or in a log line: escaped, never obeyed.
//!
//! Memory and CPU of the guest itself are held by the store (`runtime`): a resource
//! limiter and the epoch deadline with a wall-clock backstop.

pub mod egress;
pub mod limits;
pub mod names;
pub mod policy;
pub mod text;
