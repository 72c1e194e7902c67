//! Where the graph goes: the J1 integration-SDK file layout.
//!
//! ```text
//! DIR/graph/<step-id>/entities/<uuid>.json       {"entities": [...]}       <= 500 a file, one _type a file
//! DIR/graph/<step-id>/relationships/<uuid>.json  {"relationships": [...]}
//! DIR/summary.json
//! ```
//!
//! Objects are buffered per step and type and written as soon as a file's worth has
//! gathered, so the host never holds a large tenant's graph in memory.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Objects per file, as the J1 integration SDK writes them.
pub const OBJECTS_PER_FILE: usize = 500;

/// Where a stored entity can be found again (`graph.find-entity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    file: u32,
    index: u32,
}

/// Entity or relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Entity,
    Relationship,
}

impl ObjectKind {
    fn dir(self) -> &'static str {
        match self {
            ObjectKind::Entity => "entities",
            ObjectKind::Relationship => "relationships",
        }
    }
}

/// A destination for graph objects. Files today; an upload to J1 or a queue later.
pub trait GraphSink: Send {
    /// Stores one object of `object_type`, emitted by `step`, as serialized JSON.
    fn write(
        &mut self,
        step: &str,
        kind: ObjectKind,
        object_type: &str,
        object: Box<RawValue>,
    ) -> io::Result<Location>;
    /// Reads back an object written earlier.
    fn read(&mut self, location: Location) -> io::Result<Option<Map<String, Value>>>;
    /// Writes out everything still buffered.
    fn flush(&mut self) -> io::Result<()>;
}

struct Buffer {
    file: u32,
    objects: Vec<Box<RawValue>>,
}

/// The J1 integration-SDK layout under `DIR/graph`.
pub struct FileSink {
    graph_dir: PathBuf,
    per_file: usize,
    open: HashMap<(String, ObjectKind, String), Buffer>,
    /// Path and kind of every file, by number; a file is on disk once its buffer closed.
    files: Vec<(PathBuf, ObjectKind)>,
    /// Buffers not yet on disk, by file number, so `read` can find their objects.
    pending: HashMap<u32, (String, ObjectKind, String)>,
}

impl FileSink {
    /// A sink writing under `output_dir/graph`, which it empties first: objects of an
    /// earlier run must not mix with this one's.
    pub fn create(output_dir: &Path) -> io::Result<FileSink> {
        let graph_dir = output_dir.join("graph");
        match fs::remove_dir_all(&graph_dir) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        fs::create_dir_all(&graph_dir)?;
        Ok(FileSink {
            graph_dir,
            per_file: OBJECTS_PER_FILE,
            open: HashMap::new(),
            files: Vec::new(),
            pending: HashMap::new(),
        })
    }

    /// Smaller files, for tests of the batching itself.
    pub fn with_objects_per_file(mut self, per_file: usize) -> Self {
        self.per_file = per_file.max(1);
        self
    }

    /// Writes `{"<kind>": [...]}` with one object a line: valid JSON, and still easy
    /// to read and grep.
    fn write_file(&self, file: u32, objects: Vec<Box<RawValue>>) -> io::Result<()> {
        let (path, kind) = &self.files[file as usize];
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut writer = BufWriter::new(fs::File::create(path)?);
        write!(writer, "{{\"{}\": [", kind.dir())?;
        for (index, object) in objects.iter().enumerate() {
            writer.write_all(if index == 0 { b"\n" } else { b",\n" })?;
            writer.write_all(object.get().as_bytes())?;
        }
        writer.write_all(b"\n]}\n")?;
        writer.flush()
    }
}

impl GraphSink for FileSink {
    fn write(
        &mut self,
        step: &str,
        kind: ObjectKind,
        object_type: &str,
        object: Box<RawValue>,
    ) -> io::Result<Location> {
        let buffer_key = (step.to_owned(), kind, object_type.to_owned());
        if !self.open.contains_key(&buffer_key) {
            let file = u32::try_from(self.files.len())
                .map_err(|_| io::Error::other("too many output files"))?;
            let path = self
                .graph_dir
                .join(step)
                .join(kind.dir())
                .join(format!("{}.json", uuid::Uuid::new_v4()));
            self.files.push((path, kind));
            self.pending.insert(file, buffer_key.clone());
            self.open.insert(
                buffer_key.clone(),
                Buffer {
                    file,
                    objects: Vec::with_capacity(self.per_file),
                },
            );
        }
        let buffer = self.open.get_mut(&buffer_key).expect("inserted above");
        let location = Location {
            file: buffer.file,
            index: buffer.objects.len() as u32,
        };
        buffer.objects.push(object);
        if buffer.objects.len() >= self.per_file {
            let full = self.open.remove(&buffer_key).expect("present");
            self.pending.remove(&full.file);
            self.write_file(full.file, full.objects)?;
        }
        Ok(location)
    }

    fn read(&mut self, location: Location) -> io::Result<Option<Map<String, Value>>> {
        let pick = |objects: &[Value]| match objects.get(location.index as usize) {
            Some(Value::Object(object)) => Some(object.clone()),
            _ => None,
        };
        if let Some(buffer_key) = self.pending.get(&location.file) {
            let raw = self
                .open
                .get(buffer_key)
                .and_then(|b| b.objects.get(location.index as usize));
            return Ok(match raw {
                Some(raw) => serde_json::from_str(raw.get())?,
                None => None,
            });
        }
        let Some((path, kind)) = self.files.get(location.file as usize) else {
            return Ok(None);
        };
        let document: Value = serde_json::from_slice(&fs::read(path)?)?;
        Ok(document
            .get(kind.dir())
            .and_then(Value::as_array)
            .and_then(|objects| pick(objects)))
    }

    fn flush(&mut self) -> io::Result<()> {
        let open: Vec<Buffer> = self.open.drain().map(|(_, buffer)| buffer).collect();
        self.pending.clear();
        for buffer in open {
            self.write_file(buffer.file, buffer.objects)?;
        }
        Ok(())
    }
}

/// Writes `value` as pretty JSON to `path` atomically (write, then rename), so a
/// reader never sees half a summary.
pub fn write_json_atomically(path: &Path, value: &impl serde::Serialize) -> io::Result<()> {
    let partial = path.with_extension("json.partial");
    {
        let mut writer = BufWriter::new(fs::File::create(&partial)?);
        serde_json::to_writer_pretty(&mut writer, value)?;
        writer.write_all(b"\n")?;
        writer.flush()?;
    }
    fs::rename(partial, path)
}

/// Discards everything (for `describe`, which stores nothing).
pub struct NullSink;

impl GraphSink for NullSink {
    fn write(&mut self, _: &str, _: ObjectKind, _: &str, _: Box<RawValue>) -> io::Result<Location> {
        Ok(Location { file: 0, index: 0 })
    }

    fn read(&mut self, _: Location) -> io::Result<Option<Map<String, Value>>> {
        Ok(None)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str) -> Box<RawValue> {
        RawValue::from_string(format!("{{\"_key\":\"{key}\"}}")).unwrap()
    }

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path);
            }
        }
        found
    }

    #[test]
    fn splits_files_per_type_and_size_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("sink-test-{}", uuid::Uuid::new_v4()));
        let mut sink = FileSink::create(&dir).unwrap().with_objects_per_file(2);
        let mut locations = Vec::new();
        for i in 0..5 {
            locations.push(
                sink.write(
                    "step-a",
                    ObjectKind::Entity,
                    "type_x",
                    object(&format!("key-{i:08}")),
                )
                .unwrap(),
            );
        }
        sink.write(
            "step-a",
            ObjectKind::Entity,
            "type_y",
            object("other-key-1"),
        )
        .unwrap();
        // Flushed files and the open buffer both answer reads.
        assert_eq!(
            sink.read(locations[0]).unwrap().unwrap()["_key"],
            "key-00000000"
        );
        assert_eq!(
            sink.read(locations[4]).unwrap().unwrap()["_key"],
            "key-00000004"
        );
        sink.flush().unwrap();
        assert_eq!(
            sink.read(locations[4]).unwrap().unwrap()["_key"],
            "key-00000004"
        );

        let files = files_under(&dir.join("graph/step-a/entities"));
        // type_x: 2 + 2 + 1, type_y: 1.
        assert_eq!(files.len(), 4);
        let mut sizes: Vec<usize> = files
            .iter()
            .map(|path| {
                let doc: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
                let objects = doc["entities"].as_array().unwrap();
                objects.len()
            })
            .collect();
        sizes.sort();
        assert_eq!(sizes, vec![1, 1, 2, 2]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn create_clears_an_earlier_run() {
        let dir = std::env::temp_dir().join(format!("sink-test-{}", uuid::Uuid::new_v4()));
        let mut sink = FileSink::create(&dir).unwrap();
        sink.write("s", ObjectKind::Relationship, "t", object("k-0000000001"))
            .unwrap();
        sink.flush().unwrap();
        assert_eq!(files_under(&dir.join("graph")).len(), 1);
        FileSink::create(&dir).unwrap();
        assert!(files_under(&dir.join("graph")).is_empty());
        fs::remove_dir_all(dir).unwrap();
    }
}
