//! Query-string handling for list endpoints: `limit`, `skip` and `sort`, and the
//! ordering (`sort`) of a collection.
//!
//! Rules (JumpCloud's, where known; our choice where not, marked so):
//! - `limit` defaults to 10; values above 100 are **capped** to 100 rather than
//!   rejected (JumpCloud documents "limited to 100"; capping is the lenient reading
//!   and what DESIGN.md asks for); `limit=0` means the default (our choice).
//! - `skip` defaults to 0; a `skip` past the end gives an empty page that still
//!   carries the total.
//! - Non-numeric `limit`/`skip` are a 400 (our choice). Huge numbers saturate.
//! - `sort`: v1 takes a **space**-separated field list, v2 a **comma**-separated one;
//!   `-field` sorts descending. Any top-level (or dotted) field can be named; objects
//!   without it sort first, as in MongoDB, so an unknown field leaves natural order.
//!   Ties keep natural order (the sort is stable).
//! - Unknown parameters (`fields`, `filter`, ...) are ignored.

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::Value;

/// Page size when the request names none (JumpCloud's default).
pub(crate) const DEFAULT_LIMIT: usize = 10;
/// The largest page served; larger `limit`s are capped to this.
pub(crate) const MAX_LIMIT: usize = 100;

/// Which API family an endpoint belongs to: it decides the `sort` syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    V1,
    V2,
}

/// One `sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SortField {
    /// Field name; dots reach into nested objects (`mfa.configured`).
    pub(crate) path: String,
    pub(crate) descending: bool,
}

/// The paging and sorting parameters of one list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListParams {
    pub(crate) limit: usize,
    pub(crate) skip: usize,
    /// Empty when the request has no (or an empty) `sort`.
    pub(crate) sort: Vec<SortField>,
}

impl ListParams {
    /// Parses `limit`, `skip` and `sort` from a raw query string; `Err` holds the
    /// message of a 400 answer.
    pub(crate) fn parse(
        query: Option<&str>,
        api: Api,
        default_limit: usize,
    ) -> Result<ListParams, String> {
        let mut params = ListParams {
            limit: default_limit,
            skip: 0,
            sort: Vec::new(),
        };
        for (name, value) in pairs(query.unwrap_or("")) {
            match name.as_str() {
                "limit" => {
                    let limit = parse_count(&value)
                        .ok_or_else(|| format!("Bad Request: invalid limit {value:?}"))?;
                    params.limit = match limit {
                        0 => default_limit,
                        n => n.min(MAX_LIMIT),
                    };
                }
                "skip" => {
                    params.skip = parse_count(&value)
                        .ok_or_else(|| format!("Bad Request: invalid skip {value:?}"))?;
                }
                "sort" => params.sort = parse_sort(&value, api),
                _ => {}
            }
        }
        Ok(params)
    }

    /// The positions of this page in a collection of `total` objects.
    pub(crate) fn window(&self, total: usize) -> std::ops::Range<usize> {
        let start = self.skip.min(total);
        start..start.saturating_add(self.limit).min(total)
    }
}

/// Decoded `name=value` pairs of a query string, in order.
pub(crate) fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((name, value)) => (decode(name), decode(value)),
            None => (decode(part), String::new()),
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
/// Malformed escapes are kept literally; invalid UTF-8 is replaced.
pub(crate) fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

/// A non-negative decimal count; saturates instead of overflowing.
fn parse_count(raw: &str) -> Option<usize> {
    let raw = raw.trim();
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(raw.parse::<usize>().unwrap_or(usize::MAX))
}

/// Parses a `sort` value: space-separated on v1, comma-separated on v2.
fn parse_sort(raw: &str, api: Api) -> Vec<SortField> {
    let items: Vec<&str> = match api {
        Api::V1 => raw.split_whitespace().collect(),
        Api::V2 => raw.split(',').map(str::trim).collect(),
    };
    items
        .into_iter()
        .filter_map(|item| {
            let (path, descending) = match item.strip_prefix('-') {
                Some(rest) => (rest, true),
                None => (item, false),
            };
            (!path.is_empty()).then(|| SortField {
                path: path.to_owned(),
                descending,
            })
        })
        .collect()
}

/// A canonical text of a sort, used as a cache key (`-name,username`).
pub(crate) fn sort_key_text(fields: &[SortField]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.descending {
                format!("-{}", f.path)
            } else {
                f.path.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The order in which a collection is served.
#[derive(Debug, Clone)]
pub(crate) enum Order {
    /// Storage order (for generated data, also id order).
    Natural,
    /// Storage order reversed.
    Reversed,
    /// `permutation[position]` is the storage index served at that position.
    Permutation(Arc<Vec<u32>>),
}

impl Order {
    /// The storage index served at `position` of a collection of `len` objects.
    pub(crate) fn index(&self, position: usize, len: usize) -> usize {
        match self {
            Order::Natural => position,
            Order::Reversed => len - 1 - position,
            Order::Permutation(p) => p.get(position).map_or(position, |&i| i as usize),
        }
    }
}

/// Sorts `len` objects by `fields`; `object(i)` produces object `i`. Stable: ties keep
/// storage order.
pub(crate) fn compute_order(
    len: usize,
    fields: &[SortField],
    mut object: impl FnMut(usize) -> Value,
) -> Vec<u32> {
    let keys: Vec<Vec<SortKey>> = (0..len)
        .map(|i| {
            let value = object(i);
            fields
                .iter()
                .map(|f| SortKey::of(lookup(&value, &f.path)))
                .collect()
        })
        .collect();
    let mut order: Vec<u32> = (0..len as u32).collect();
    order.sort_by(|&a, &b| {
        for (k, field) in fields.iter().enumerate() {
            let ord = keys[a as usize][k].cmp(&keys[b as usize][k]);
            let ord = if field.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    order
}

/// Reads a dotted path (`mfa.configured`) from an object.
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, part| v.get(part))
}

/// A sortable image of a JSON value, ordered like MongoDB orders BSON types:
/// missing/null < numbers < strings < objects and arrays < booleans.
#[derive(Debug, Clone)]
enum SortKey {
    Null,
    Number(f64),
    Text(String),
    Other(String),
    Bool(bool),
}

impl SortKey {
    fn of(value: Option<&Value>) -> SortKey {
        match value {
            None | Some(Value::Null) => SortKey::Null,
            Some(Value::Number(n)) => SortKey::Number(n.as_f64().unwrap_or(0.0)),
            Some(Value::String(s)) => SortKey::Text(s.clone()),
            Some(Value::Bool(b)) => SortKey::Bool(*b),
            Some(other) => SortKey::Other(other.to_string()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            SortKey::Null => 0,
            SortKey::Number(_) => 1,
            SortKey::Text(_) => 2,
            SortKey::Other(_) => 3,
            SortKey::Bool(_) => 4,
        }
    }
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SortKey {}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SortKey::Number(a), SortKey::Number(b)) => a.total_cmp(b),
            (SortKey::Text(a), SortKey::Text(b)) | (SortKey::Other(a), SortKey::Other(b)) => {
                a.cmp(b)
            }
            (SortKey::Bool(a), SortKey::Bool(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_limits_with_cap_and_default() {
        let p = ListParams::parse(Some("limit=500&skip=20"), Api::V1, DEFAULT_LIMIT).unwrap();
        assert_eq!((p.limit, p.skip), (MAX_LIMIT, 20));
        let p = ListParams::parse(None, Api::V1, DEFAULT_LIMIT).unwrap();
        assert_eq!((p.limit, p.skip), (DEFAULT_LIMIT, 0));
        let p = ListParams::parse(Some("limit=0"), Api::V1, DEFAULT_LIMIT).unwrap();
        assert_eq!(p.limit, DEFAULT_LIMIT);
        assert!(ListParams::parse(Some("limit=ten"), Api::V1, DEFAULT_LIMIT).is_err());
        assert!(ListParams::parse(Some("skip=-1"), Api::V2, DEFAULT_LIMIT).is_err());
        let p = ListParams::parse(Some("skip=99999999999999999999999"), Api::V2, DEFAULT_LIMIT)
            .unwrap();
        assert_eq!(p.skip, usize::MAX);
        assert_eq!(p.window(5), 5..5);
    }

    #[test]
    fn parses_v1_and_v2_sort_syntax() {
        let v1 = ListParams::parse(Some("sort=-name%20username"), Api::V1, DEFAULT_LIMIT).unwrap();
        assert_eq!(sort_key_text(&v1.sort), "-name,username");
        let v1_plus = ListParams::parse(Some("sort=email+-_id"), Api::V1, DEFAULT_LIMIT).unwrap();
        assert_eq!(sort_key_text(&v1_plus.sort), "email,-_id");
        let v2 = ListParams::parse(Some("sort=name,-id"), Api::V2, DEFAULT_LIMIT).unwrap();
        assert_eq!(sort_key_text(&v2.sort), "name,-id");
    }

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(decode("a%20b+c%2"), "a b c%2");
        assert_eq!(decode("%C3%A9"), "é");
    }

    #[test]
    fn sorts_stably_with_missing_first() {
        let objects = [
            json!({"n": "b"}),
            json!({}),
            json!({"n": "a"}),
            json!({"n": "b"}),
        ];
        let asc = compute_order(
            4,
            &[SortField {
                path: "n".into(),
                descending: false,
            }],
            |i| objects[i].clone(),
        );
        assert_eq!(asc, vec![1, 2, 0, 3]);
        let desc = compute_order(
            4,
            &[SortField {
                path: "n".into(),
                descending: true,
            }],
            |i| objects[i].clone(),
        );
        assert_eq!(desc, vec![0, 3, 2, 1]);
    }
}
