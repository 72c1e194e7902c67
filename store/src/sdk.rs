//! Reading a run's output, the J1 integration-SDK layout, back as objects for the
//! store: `DIR/graph/<step>/{entities,relationships}/<uuid>.json`, one file at a time,
//! so a large tenant never sits in memory whole.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::model::{NewObject, ObjectKind};

/// Why an output folder could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// The objects of a run's output folder, file by file.
pub struct OutputReader {
    files: std::vec::IntoIter<(PathBuf, String, ObjectKind)>,
    current: std::vec::IntoIter<Map<String, Value>>,
    current_step: String,
    current_kind: ObjectKind,
    current_path: PathBuf,
}

#[derive(Deserialize)]
struct EntitiesFile {
    entities: Vec<Map<String, Value>>,
}

#[derive(Deserialize)]
struct RelationshipsFile {
    relationships: Vec<Map<String, Value>>,
}

impl OutputReader {
    /// Lists the graph files under `output_dir/graph` (none when the folder is missing:
    /// a run that stopped before writing anything).
    pub fn open(output_dir: &Path) -> Result<OutputReader, ReadError> {
        let graph = output_dir.join("graph");
        let mut files = Vec::new();
        for step in sorted_entries(&graph)? {
            let Some(step_id) = step.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            for (folder, kind) in [
                ("entities", ObjectKind::Entity),
                ("relationships", ObjectKind::Relationship),
            ] {
                for file in sorted_entries(&step.join(folder))? {
                    if file.extension().is_some_and(|e| e == "json") {
                        files.push((file, step_id.clone(), kind));
                    }
                }
            }
        }
        Ok(OutputReader {
            files: files.into_iter(),
            current: Vec::new().into_iter(),
            current_step: String::new(),
            current_kind: ObjectKind::Entity,
            current_path: PathBuf::new(),
        })
    }

    fn load_next_file(&mut self) -> Result<bool, ReadError> {
        let Some((path, step, kind)) = self.files.next() else {
            return Ok(false);
        };
        let text = fs::read(&path).map_err(|source| ReadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let invalid = |error: serde_json::Error| ReadError::Invalid {
            path: path.display().to_string(),
            reason: error.to_string(),
        };
        let objects = match kind {
            ObjectKind::Entity => {
                serde_json::from_slice::<EntitiesFile>(&text)
                    .map_err(invalid)?
                    .entities
            }
            ObjectKind::Relationship => {
                serde_json::from_slice::<RelationshipsFile>(&text)
                    .map_err(invalid)?
                    .relationships
            }
        };
        self.current = objects.into_iter();
        self.current_step = step;
        self.current_kind = kind;
        self.current_path = path;
        Ok(true)
    }
}

impl Iterator for OutputReader {
    type Item = Result<NewObject, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(object) = self.current.next() {
                return Some(
                    object_from_json(self.current_kind, object)
                        .map(|mut object| {
                            object.step = Some(self.current_step.clone());
                            object
                        })
                        .map_err(|reason| ReadError::Invalid {
                            path: self.current_path.display().to_string(),
                            reason,
                        }),
                );
            }
            match self.load_next_file() {
                Ok(true) => continue,
                Ok(false) => return None,
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ReadError::Io {
                path: dir.display().to_string(),
                source,
            });
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ReadError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        paths.push(entry.path());
    }
    paths.sort();
    Ok(paths)
}

/// A J1 JSON object as a [`NewObject`].
pub fn object_from_json(
    kind: ObjectKind,
    mut object: Map<String, Value>,
) -> Result<NewObject, String> {
    let text = |object: &mut Map<String, Value>, name: &str| match object.remove(name) {
        Some(Value::String(text)) => Ok(text),
        _ => Err(format!("an object without a text {name}")),
    };
    let key = text(&mut object, "_key")?;
    let object_type = text(&mut object, "_type")?;
    let classes = match object.remove("_class") {
        Some(Value::String(class)) => vec![class],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(class) => Ok(class),
                _ => Err(format!("{key}: _class holds a value that is not text")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(format!("{key}: no _class")),
    };
    let (from_key, to_key) = match kind {
        ObjectKind::Entity => (None, None),
        ObjectKind::Relationship => (
            Some(text(&mut object, "_fromEntityKey")?),
            Some(text(&mut object, "_toEntityKey")?),
        ),
    };
    let raw_data = match object.remove("_rawData") {
        Some(Value::Array(items)) => items
            .into_iter()
            .find_map(|mut item| item.get_mut("rawData").map(Value::take))
            .map(|raw| raw.to_string()),
        _ => None,
    };
    Ok(NewObject {
        step: None,
        kind,
        key,
        object_type,
        classes,
        from_key,
        to_key,
        properties: object,
        raw_data,
    })
}
