//! Where the graph goes: the J1 integration-SDK file layout.
//!
//! ```text
//! DIR/graph/<step-id>/entities/<uuid>.json       {"entities": [...]}       <= 500 a file, one _type a file
//! DIR/graph/<step-id>/relationships/<uuid>.json  {"relationships": [...]}
//! DIR/summary.json
//! ```
//!
//! Objects are buffered per step and type and written as soon as a file's worth has
//! gathered (500 objects, or 8 MiB), and every buffer is written out when together they
//! hold 32 MiB, so the host never holds much of a tenant's graph in memory, whatever
//! the size or the number of types of its objects. Step ids become folder names: a
//! step id that is not one (`sandbox::names`) is refused here too.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Objects per file, as the J1 integration SDK writes them.
pub const OBJECTS_PER_FILE: usize = 500;
/// A file is written once its objects take this many bytes, even with fewer than 500.
const MAX_FILE_BYTES: usize = 8 << 20;
/// All buffers are written out once together they take this many bytes.
const MAX_BUFFERED_BYTES: usize = 32 << 20;
/// What an open buffer costs besides its objects (its entry, its key's text, its
/// list): counted so that a plugin with many types cannot hold many buffers.
const BUFFER_OVERHEAD: usize = 256;

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
    bytes: usize,
}

/// Where a file is: `graph/<steps[step]>/<kind>/<uuid>.json`. Kept small, one per file.
#[derive(Clone, Copy)]
struct FileName {
    step: u32,
    kind: ObjectKind,
    uuid: uuid::Uuid,
}

/// The J1 integration-SDK layout under `DIR/graph`.
pub struct FileSink {
    graph_dir: PathBuf,
    per_file: usize,
    open: HashMap<(String, ObjectKind, String), Buffer>,
    /// Bytes of the objects in `open`.
    buffered: usize,
    /// All buffers are written out once `buffered` reaches this.
    max_buffered: usize,
    /// Step ids seen, each checked once.
    steps: Vec<String>,
    /// Every file, by number; a file is on disk once its buffer closed.
    files: Vec<FileName>,
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
            buffered: 0,
            max_buffered: MAX_BUFFERED_BYTES,
            steps: Vec::new(),
            files: Vec::new(),
            pending: HashMap::new(),
        })
    }

    fn path(&self, name: FileName) -> PathBuf {
        self.graph_dir
            .join(&self.steps[name.step as usize])
            .join(name.kind.dir())
            .join(format!("{}.json", name.uuid))
    }

    /// The number of `step`, checked to be a folder name the first time it is seen.
    fn step_number(&mut self, step: &str) -> io::Result<u32> {
        if let Some(index) = self.steps.iter().position(|s| s == step) {
            return Ok(index as u32);
        }
        if !crate::sandbox::names::is_valid_id(step) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "step id {:?} is not a folder name ({})",
                    crate::sandbox::text::Untrusted(step),
                    crate::sandbox::names::ID_PATTERN
                ),
            ));
        }
        self.steps.push(step.to_owned());
        Ok((self.steps.len() - 1) as u32)
    }

    /// Writes out the buffer of `buffer_key`.
    fn close(&mut self, buffer_key: &(String, ObjectKind, String)) -> io::Result<()> {
        if let Some(full) = self.open.remove(buffer_key) {
            self.buffered -= full.bytes;
            self.pending.remove(&full.file);
            self.write_file(full.file, full.objects)?;
        }
        Ok(())
    }

    /// Smaller files, for tests of the batching itself.
    pub fn with_objects_per_file(mut self, per_file: usize) -> Self {
        self.per_file = per_file.max(1);
        self
    }

    /// Writes `{"<kind>": [...]}` with one object a line: valid JSON, and still easy
    /// to read and grep.
    fn write_file(&self, file: u32, objects: Vec<Box<RawValue>>) -> io::Result<()> {
        let name = self.files[file as usize];
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut writer = BufWriter::new(fs::File::create(&path)?);
        write!(writer, "{{\"{}\": [", name.kind.dir())?;
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
            let step_number = self.step_number(step)?;
            self.files.push(FileName {
                step: step_number,
                kind,
                uuid: uuid::Uuid::new_v4(),
            });
            self.pending.insert(file, buffer_key.clone());
            self.open.insert(
                buffer_key.clone(),
                Buffer {
                    file,
                    objects: Vec::new(),
                    bytes: BUFFER_OVERHEAD + step.len() + object_type.len(),
                },
            );
            self.buffered += BUFFER_OVERHEAD + step.len() + object_type.len();
        }
        let size = object.get().len();
        let buffer = self.open.get_mut(&buffer_key).expect("inserted above");
        let location = Location {
            file: buffer.file,
            index: buffer.objects.len() as u32,
        };
        buffer.objects.push(object);
        buffer.bytes += size;
        self.buffered += size;
        if buffer.objects.len() >= self.per_file || buffer.bytes >= MAX_FILE_BYTES {
            self.close(&buffer_key)?;
        }
        if self.buffered >= self.max_buffered {
            let keys: Vec<_> = self.open.keys().cloned().collect();
            for key in keys {
                self.close(&key)?;
            }
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
        let Some(&name) = self.files.get(location.file as usize) else {
            return Ok(None);
        };
        let document: Value = serde_json::from_slice(&fs::read(self.path(name))?)?;
        Ok(document
            .get(name.kind.dir())
            .and_then(Value::as_array)
            .and_then(|objects| pick(objects)))
    }

    fn flush(&mut self) -> io::Result<()> {
        let open: Vec<Buffer> = self.open.drain().map(|(_, buffer)| buffer).collect();
        self.pending.clear();
        self.buffered = 0;
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
    fn a_step_id_that_is_not_a_folder_name_is_refused() {
        let root = std::env::temp_dir().join(format!("sink-test-{}", uuid::Uuid::new_v4()));
        let dir = root.join("a/b/out");
        let mut sink = FileSink::create(&dir).unwrap();
        let error = sink
            .write(
                "../../../escaped",
                ObjectKind::Entity,
                "t_t",
                object("k-0000000001"),
            )
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        sink.flush().unwrap();
        assert!(!root.join("a/escaped").exists());
        assert!(files_under(&root).is_empty());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn large_objects_and_many_types_are_written_out_early() {
        let dir = std::env::temp_dir().join(format!("sink-test-{}", uuid::Uuid::new_v4()));
        let mut sink = FileSink::create(&dir).unwrap();
        let big = |key: &str| {
            RawValue::from_string(format!(
                "{{\"_key\":\"{key}\",\"blob\":\"{}\"}}",
                "b".repeat(3 << 20)
            ))
            .unwrap()
        };
        for i in 0..3 {
            sink.write(
                "s",
                ObjectKind::Entity,
                "t_big",
                big(&format!("key-{i:08}")),
            )
            .unwrap();
        }
        // Three objects of 3 MiB pass the 8 MiB a file: the first file is written.
        assert_eq!(files_under(&dir.join("graph")).len(), 1);
        assert!(sink.buffered < MAX_FILE_BYTES);
        // Buffers of many types together are bounded too.
        sink.max_buffered = 64 << 10;
        for i in 0..1000 {
            sink.write(
                "s",
                ObjectKind::Entity,
                &format!("t_{i}"),
                object("k-0000000001"),
            )
            .unwrap();
            assert!(sink.buffered < 64 << 10);
        }
        assert!(files_under(&dir.join("graph")).len() > 200);
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
