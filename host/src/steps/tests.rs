//! Unit tests of step ordering, configuration resolution and the job summary.

use super::*;
