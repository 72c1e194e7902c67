//! Unit tests of the graph store.

use super::*;
