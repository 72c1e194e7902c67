//! Unit tests of paging, retries and error mapping, over a scripted transport.

use super::*;
