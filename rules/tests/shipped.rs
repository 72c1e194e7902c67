//! The shipped JumpCloud rules file loads and says what the README promises.

mod support;

use std::path::Path;

use alert_rules::model::Action;
use alert_rules::{AlertLevel, Rule, load_rules_file};
use support::ScriptedChecker;

fn shipped() -> Vec<Rule> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("jumpcloud-rules.json");
    load_rules_file(&path, &ScriptedChecker).unwrap_or_else(|e| panic!("{e}"))
}

fn level(rule: &Rule) -> Option<AlertLevel> {
    rule.operations
        .iter()
        .flat_map(|op| &op.actions)
        .find_map(|action| match action {
            Action::SetAlertLevel(level) => Some(*level),
            _ => None,
        })
}

#[test]
fn shipped_rules_cover_the_jumpcloud_questions() {
    let rules = shipped();
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "jumpcloud-users-without-mfa",
            "jumpcloud-new-user-without-mfa",
            "jumpcloud-inactive-users-in-groups",
            "jumpcloud-suspended-users-with-applications",
            "jumpcloud-users-not-mapped-to-a-person",
            "jumpcloud-empty-groups",
            "jumpcloud-applications-assigned-to-nobody",
        ]
    );
    for rule in &rules {
        assert!(rule.creates_alerts(), "{} opens alerts", rule.name);
        assert!(level(rule).is_some(), "{} sets a level", rule.name);
        assert!(
            rule.description.len() > 80,
            "{} explains its intent",
            rule.name
        );
        assert!(
            !rule.queries[0].query.contains("UserGroup"),
            "our groups are class Group"
        );
    }
    let no_mfa = &rules[0];
    assert!(
        no_mfa.queries[0]
            .query
            .contains("mfaEnabled != true AND mfaExclusion != true"),
        "J1's OR bug fixed"
    );
    let new_user = &rules[1];
    assert!(new_user.trigger_actions_on_new_entities_only);
    assert!(
        rules
            .iter()
            .filter(|r| r.trigger_actions_on_new_entities_only)
            .count()
            == 1
    );
}
