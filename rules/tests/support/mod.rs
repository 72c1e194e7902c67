//! A scripted query engine for the rule tests: each query text answers what the test set for
//! it. (The shipped rules are tested against the real J1QL engine.)

#![allow(dead_code)] // each test file uses part of it

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use alert_rules::{QueryCheckError, QueryChecker, QueryOutput, QueryRunner};
use serde_json::json;

/// Refuses a query containing `BAD` (pointing at it), or not starting with FIND.
pub struct ScriptedChecker;

impl QueryChecker for ScriptedChecker {
    fn check(&self, query: &str) -> Result<(), QueryCheckError> {
        if let Some(at) = query.find("BAD") {
            let line = query[..at].matches('\n').count() + 1;
            let column = at - query[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
            return Err(QueryCheckError {
                message: "unexpected `BAD`".to_owned(),
                line,
                column,
            });
        }
        if !query.trim_start().to_ascii_uppercase().starts_with("FIND") {
            return Err(QueryCheckError {
                message: "expected FIND".to_owned(),
                line: 1,
                column: 1,
            });
        }
        Ok(())
    }
}

/// Answers each query with the entities the test put in for it.
#[derive(Default)]
pub struct ScriptedRunner {
    answers: RefCell<BTreeMap<String, Result<QueryOutput, String>>>,
}

impl ScriptedRunner {
    /// `query` returns entities with these `_key`s, of `_type` `type_`.
    pub fn answer(&self, query: &str, type_: &str, keys: &[&str]) {
        let data = keys
            .iter()
            .map(|key| json!({"id": key, "entity": {"_key": key, "_type": type_}, "properties": {"name": format!("name of {key}")}}))
            .collect();
        self.answers.borrow_mut().insert(
            query.to_owned(),
            Ok(QueryOutput {
                total: keys.len(),
                data: serde_json::Value::Array(data),
                ids: keys.iter().map(|k| k.to_string()).collect(),
                touched_types: BTreeSet::from([type_.to_owned()]),
            }),
        );
    }

    pub fn fail(&self, query: &str, message: &str) {
        self.answers
            .borrow_mut()
            .insert(query.to_owned(), Err(message.to_owned()));
    }
}

impl QueryChecker for ScriptedRunner {
    fn check(&self, query: &str) -> Result<(), QueryCheckError> {
        ScriptedChecker.check(query)
    }
}

impl QueryRunner for ScriptedRunner {
    fn run(&self, query: &str, _include_deleted: bool) -> Result<QueryOutput, String> {
        self.answers
            .borrow()
            .get(query)
            .cloned()
            .unwrap_or_else(|| Err(format!("the test scripted no answer for {query:?}")))
    }
}
