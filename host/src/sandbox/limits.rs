//! Budgets: how much a plugin may make the host hold for it in one tenant run.
//!
//! The guest's own memory, CPU and network are capped by the store (see `policy`);
//! these bound what it can make the *host* keep: job data (`set-data`), the graph's
//! index, the bytes written to the output, the log. Each is checked in the host import
//! where the plugin spends it. The hard budgets (job data, graph, output) end the
//! tenant's run with [`LimitExceeded`] when a call would pass them, keeping what was
//! stored before; the log budgets are soft: lines past them are dropped and counted,
//! long lines cut with a marker.

use std::fmt;

/// `[sandbox]` defaults, as documented in the README. The 100k-user JumpCloud tenant
/// (684 000 objects, about 105 MiB of graph index and 560 MiB of output, a few KiB of
/// job data) fits with room to spare; a hostile plugin stays far below 1 GiB of host
/// memory.
pub const DEFAULT_MAX_JOB_DATA_MIB: u64 = 64;
pub const DEFAULT_MAX_JOB_DATA_ENTRIES: u64 = 100_000;
pub const DEFAULT_MAX_GRAPH_OBJECTS: u64 = 2_000_000;
pub const DEFAULT_MAX_GRAPH_MIB: u64 = 256;
pub const DEFAULT_MAX_OUTPUT_MIB: u64 = 2048;
pub const DEFAULT_MAX_LOG_KIB: u64 = 4096;
pub const DEFAULT_MAX_LOG_LINE_BYTES: u64 = 4096;

/// What the host keeps in memory for one stored object besides its key: the index
/// entry, the key's allocation header, its place in the per-type list and its file
/// location. Measured on the 100k tenant (about 180 bytes an object in all, keys
/// included), rounded up.
pub const GRAPH_BYTES_PER_OBJECT: u64 = 128;
/// What the host keeps for one `set-data` entry besides key and value.
pub const JOB_DATA_BYTES_PER_ENTRY: u64 = 64;

/// The limits of one tenant run, in bytes and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// `set-data`: keys and values held, plus [`JOB_DATA_BYTES_PER_ENTRY`] each.
    pub job_data_bytes: u64,
    /// `set-data`: distinct keys held.
    pub job_data_entries: u64,
    /// Entities and relationships stored, with the entities mapped relationships create.
    pub graph_objects: u64,
    /// Host memory of the graph's index: keys, emails, types, and
    /// [`GRAPH_BYTES_PER_OBJECT`] for each object.
    pub graph_bytes: u64,
    /// Bytes of graph objects written to the output.
    pub output_bytes: u64,
    /// Bytes of guest log lines written per run; later lines are dropped and counted.
    pub log_bytes: u64,
    /// Bytes of one guest log line (message and fields); longer lines are cut.
    pub log_line_bytes: u64,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            job_data_bytes: DEFAULT_MAX_JOB_DATA_MIB << 20,
            job_data_entries: DEFAULT_MAX_JOB_DATA_ENTRIES,
            graph_objects: DEFAULT_MAX_GRAPH_OBJECTS,
            graph_bytes: DEFAULT_MAX_GRAPH_MIB << 20,
            output_bytes: DEFAULT_MAX_OUTPUT_MIB << 20,
            log_bytes: DEFAULT_MAX_LOG_KIB << 10,
            log_line_bytes: DEFAULT_MAX_LOG_LINE_BYTES,
        }
    }
}

impl Budgets {
    /// No limits: for stores that only tests and tools fill.
    pub fn unlimited() -> Budgets {
        Budgets {
            job_data_bytes: u64::MAX,
            job_data_entries: u64::MAX,
            graph_objects: u64::MAX,
            graph_bytes: u64::MAX,
            output_bytes: u64::MAX,
            log_bytes: u64::MAX,
            log_line_bytes: u64::MAX,
        }
    }
}

/// Reads the budget fields of `[sandbox]` into `budgets`; an error names the field.
pub fn apply_budgets(
    budgets: &mut Budgets,
    file: &crate::config::SandboxFile,
) -> Result<(), (&'static str, String)> {
    let fields: [(&'static str, Option<u64>, u32, &mut u64); 7] = [
        (
            "maxJobDataMiB",
            file.max_job_data_mib,
            20,
            &mut budgets.job_data_bytes,
        ),
        (
            "maxJobDataEntries",
            file.max_job_data_entries,
            0,
            &mut budgets.job_data_entries,
        ),
        (
            "maxGraphObjects",
            file.max_graph_objects,
            0,
            &mut budgets.graph_objects,
        ),
        (
            "maxGraphMiB",
            file.max_graph_mib,
            20,
            &mut budgets.graph_bytes,
        ),
        (
            "maxOutputMiB",
            file.max_output_mib,
            20,
            &mut budgets.output_bytes,
        ),
        ("maxLogKiB", file.max_log_kib, 10, &mut budgets.log_bytes),
        (
            "maxLogLineBytes",
            file.max_log_line_bytes,
            0,
            &mut budgets.log_line_bytes,
        ),
    ];
    for (field, value, shift, budget) in fields {
        let Some(value) = value else { continue };
        if value == 0 {
            return Err((field, "must be at least 1".into()));
        }
        *budget = value
            .checked_mul(1 << shift)
            .ok_or((field, "is too large".to_owned()))?;
    }
    Ok(())
}

/// What a run spent of its budgets, as `summary.json` reports it (`run.spent`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spending {
    /// Entities and relationships stored (`maxGraphObjects`).
    pub graph_objects: u64,
    /// Host memory of the graph's index, as charged (`maxGraphMiB`).
    pub graph_bytes: u64,
    /// Bytes of objects written (`maxOutputMiB`).
    pub output_bytes: u64,
    /// Job data held at the end (`maxJobDataMiB`).
    pub job_data_bytes: u64,
    /// Job-data entries held at the end (`maxJobDataEntries`).
    pub job_data_entries: u64,
    /// Bytes of log lines written (`maxLogKiB`).
    pub log_bytes: u64,
}

/// A hard budget, named as in `[sandbox]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    JobData,
    JobDataEntries,
    GraphObjects,
    Graph,
    Output,
}

impl Budget {
    /// What is counted, in words.
    pub fn what(self) -> &'static str {
        match self {
            Budget::JobData => "job data",
            Budget::JobDataEntries => "job data entries",
            Budget::GraphObjects => "graph objects",
            Budget::Graph => "graph index",
            Budget::Output => "output",
        }
    }

    /// The `[sandbox]` field that sets it.
    pub fn field(self) -> &'static str {
        match self {
            Budget::JobData => "maxJobDataMiB",
            Budget::JobDataEntries => "maxJobDataEntries",
            Budget::GraphObjects => "maxGraphObjects",
            Budget::Graph => "maxGraphMiB",
            Budget::Output => "maxOutputMiB",
        }
    }

    fn in_bytes(self) -> bool {
        matches!(self, Budget::JobData | Budget::Graph | Budget::Output)
    }

    /// This budget's limit in `budgets`.
    pub fn limit(self, budgets: &Budgets) -> u64 {
        match self {
            Budget::JobData => budgets.job_data_bytes,
            Budget::JobDataEntries => budgets.job_data_entries,
            Budget::GraphObjects => budgets.graph_objects,
            Budget::Graph => budgets.graph_bytes,
            Budget::Output => budgets.output_bytes,
        }
    }
}

/// A plugin asked the host to hold more than its run's budget allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LimitExceeded {
    pub budget: Budget,
    /// The limit, in bytes or objects.
    pub limit: u64,
}

impl fmt::Display for LimitExceeded {
    /// `limit exceeded: job data 64 MiB (sandbox.maxJobDataMiB)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "limit exceeded: {} ", self.budget.what())?;
        match (self.budget.in_bytes(), self.limit) {
            (true, bytes) if bytes % (1 << 20) == 0 => write!(f, "{} MiB", bytes >> 20)?,
            (true, bytes) => write!(f, "{bytes} bytes")?,
            (false, count) => write!(f, "{count}")?,
        }
        write!(f, " (sandbox.{})", self.budget.field())
    }
}

/// What a run has spent of one budget.
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    budget: Budget,
    limit: u64,
    spent: u64,
}

impl Meter {
    pub fn new(budget: Budget, budgets: &Budgets) -> Meter {
        Meter {
            budget,
            limit: budget.limit(budgets),
            spent: 0,
        }
    }

    /// Spends `amount`, or refuses (spending nothing) when it would pass the limit.
    pub fn charge(&mut self, amount: u64) -> Result<(), LimitExceeded> {
        self.check(amount)?;
        self.spent += amount;
        Ok(())
    }

    /// Whether `amount` more would still fit.
    pub fn check(&self, amount: u64) -> Result<(), LimitExceeded> {
        match self.spent.checked_add(amount) {
            Some(total) if total <= self.limit => Ok(()),
            _ => Err(LimitExceeded {
                budget: self.budget,
                limit: self.limit,
            }),
        }
    }

    /// Gives back what was spent on something no longer held.
    pub fn refund(&mut self, amount: u64) {
        self.spent = self.spent.saturating_sub(amount);
    }

    pub fn spent(&self) -> u64 {
        self.spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_the_budget_its_limit_and_its_field() {
        let error = LimitExceeded {
            budget: Budget::JobData,
            limit: 64 << 20,
        };
        assert_eq!(
            error.to_string(),
            "limit exceeded: job data 64 MiB (sandbox.maxJobDataMiB)"
        );
        let error = LimitExceeded {
            budget: Budget::GraphObjects,
            limit: 2_000_000,
        };
        assert_eq!(
            error.to_string(),
            "limit exceeded: graph objects 2000000 (sandbox.maxGraphObjects)"
        );
    }

    #[test]
    fn a_meter_refuses_what_would_pass_the_limit_and_spends_nothing_then() {
        let budgets = Budgets {
            graph_objects: 10,
            ..Budgets::default()
        };
        let mut meter = Meter::new(Budget::GraphObjects, &budgets);
        meter.charge(6).unwrap();
        assert_eq!(meter.charge(5).unwrap_err().budget, Budget::GraphObjects);
        assert_eq!(meter.spent(), 6);
        meter.charge(4).unwrap();
        meter.refund(3);
        meter.charge(3).unwrap();
        assert!(meter.charge(u64::MAX).is_err(), "no overflow");
    }
}
