//! Where the graph goes: the J1 integration-SDK file layout.
//!
//! ```text
//! DIR/graph/<step-id>/entities/<uuid>.json       {"entities": [...]}       <= 500 a file, one _type a file
//! DIR/graph/<step-id>/relationships/<uuid>.json  {"relationships": [...]}
//! DIR/summary.json
//! ```
//!
//! Objects are buffered per step and type and written as soon as a file's worth has
//! gathered, so the host never holds a large tenant's graph in memory; serializing and
//! writing happen on a thread of their own.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

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

/// An object to write: its JSON is made when (and where) the sink needs it, so a sink
/// may serialize on another thread, or not at all.
pub type Deferred = Box<dyn FnOnce() -> io::Result<Box<RawValue>> + Send>;

/// A destination for graph objects. Files today; an upload to J1 or a queue later.
pub trait GraphSink: Send {
    /// Stores one object of `object_type`, emitted by `step`.
    fn write(
        &mut self,
        step: &str,
        kind: ObjectKind,
        object_type: &str,
        object: Deferred,
    ) -> io::Result<Location>;
    /// Reads back an object written earlier.
    fn read(&mut self, location: Location) -> io::Result<Option<Map<String, Value>>>;
    /// Writes out everything still buffered.
    fn flush(&mut self) -> io::Result<()>;
}

/// What the writer thread is asked to do, in order.
enum Command {
    /// Start file `file` at `path`.
    Open {
        file: u32,
        path: PathBuf,
        kind: ObjectKind,
    },
    /// Serialize one object into file `file`.
    Object { file: u32, object: Deferred },
    /// File `file` is complete: write it.
    Close { file: u32 },
    /// Answer with object `index` of file `file`.
    Read {
        location: Location,
        reply: mpsc::Sender<io::Result<Option<Map<String, Value>>>>,
    },
    /// Answer once everything before has been done.
    Sync { reply: mpsc::Sender<io::Result<()>> },
}

/// Objects waiting on the writer thread: enough to keep it busy, few enough that a
/// fast guest cannot pile up memory.
const WRITER_QUEUE: usize = 2048;

/// The J1 integration-SDK layout under `DIR/graph`. Keeping count of files happens
/// here; serializing and writing happen on a writer thread, so the thread that runs the
/// guest does not wait for them.
pub struct FileSink {
    graph_dir: PathBuf,
    per_file: usize,
    /// Files being filled: their number and how many objects they have.
    open: HashMap<(String, ObjectKind, String), (u32, usize)>,
    next_file: u32,
    commands: Option<mpsc::SyncSender<Command>>,
    writer: Option<std::thread::JoinHandle<()>>,
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
        let (commands, inbox) = mpsc::sync_channel(WRITER_QUEUE);
        let writer = std::thread::Builder::new()
            .name("graph-writer".into())
            .spawn(move || Writer::default().run(inbox))?;
        Ok(FileSink {
            graph_dir,
            per_file: OBJECTS_PER_FILE,
            open: HashMap::new(),
            next_file: 0,
            commands: Some(commands),
            writer: Some(writer),
        })
    }

    /// Smaller files, for tests of the batching itself.
    pub fn with_objects_per_file(mut self, per_file: usize) -> Self {
        self.per_file = per_file.max(1);
        self
    }

    fn send(&self, command: Command) -> io::Result<()> {
        self.commands
            .as_ref()
            .and_then(|commands| commands.send(command).ok())
            .ok_or_else(|| io::Error::other("the graph writer has stopped"))
    }

    /// Waits until the writer has done everything asked so far; its first error, if any.
    fn sync(&self) -> io::Result<()> {
        let (reply, answer) = mpsc::channel();
        self.send(Command::Sync { reply })?;
        answer
            .recv()
            .map_err(|_| io::Error::other("the graph writer has stopped"))?
    }
}

impl GraphSink for FileSink {
    fn write(
        &mut self,
        step: &str,
        kind: ObjectKind,
        object_type: &str,
        object: Deferred,
    ) -> io::Result<Location> {
        let buffer_key = (step.to_owned(), kind, object_type.to_owned());
        let (file, count) = match self.open.get(&buffer_key) {
            Some(&open) => open,
            None => {
                let file = self.next_file;
                self.next_file = file
                    .checked_add(1)
                    .ok_or_else(|| io::Error::other("too many output files"))?;
                let path = self
                    .graph_dir
                    .join(step)
                    .join(kind.dir())
                    .join(format!("{}.json", uuid::Uuid::new_v4()));
                self.send(Command::Open { file, path, kind })?;
                (file, 0)
            }
        };
        self.send(Command::Object { file, object })?;
        let location = Location {
            file,
            index: count as u32,
        };
        if count + 1 >= self.per_file {
            self.open.remove(&buffer_key);
            self.send(Command::Close { file })?;
        } else {
            self.open.insert(buffer_key, (file, count + 1));
        }
        Ok(location)
    }

    fn read(&mut self, location: Location) -> io::Result<Option<Map<String, Value>>> {
        let (reply, answer) = mpsc::channel();
        self.send(Command::Read { location, reply })?;
        answer
            .recv()
            .map_err(|_| io::Error::other("the graph writer has stopped"))?
    }

    fn flush(&mut self) -> io::Result<()> {
        let open: Vec<u32> = self.open.drain().map(|(_, (file, _))| file).collect();
        for file in open {
            self.send(Command::Close { file })?;
        }
        self.sync()
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Closing the channel ends the writer once it has done what it was asked.
        self.commands = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread's state.
#[derive(Default)]
struct Writer {
    /// Files being filled: path, kind, objects so far.
    open: HashMap<u32, (PathBuf, ObjectKind, Vec<Box<RawValue>>)>,
    /// Files on disk.
    written: HashMap<u32, (PathBuf, ObjectKind)>,
    /// The first failure; everything after it is refused with it.
    failure: Option<String>,
}

impl Writer {
    fn run(mut self, inbox: mpsc::Receiver<Command>) {
        for command in inbox {
            match command {
                Command::Open { file, path, kind } => {
                    self.open.insert(file, (path, kind, Vec::new()));
                }
                Command::Object { file, object } => {
                    if self.failure.is_none() {
                        match object() {
                            Ok(json) => {
                                if let Some((_, _, objects)) = self.open.get_mut(&file) {
                                    objects.push(json);
                                }
                            }
                            Err(error) => self.failure = Some(error.to_string()),
                        }
                    }
                }
                Command::Close { file } => {
                    if let Some((path, kind, objects)) = self.open.remove(&file) {
                        if self.failure.is_none()
                            && let Err(error) = write_file(&path, kind, &objects)
                        {
                            self.failure = Some(format!("{}: {error}", path.display()));
                        }
                        self.written.insert(file, (path, kind));
                    }
                }
                Command::Read { location, reply } => {
                    let _ = reply.send(self.read(location));
                }
                Command::Sync { reply } => {
                    let _ = reply.send(match &self.failure {
                        Some(failure) => Err(io::Error::other(failure.clone())),
                        None => Ok(()),
                    });
                }
            }
        }
    }

    fn read(&self, location: Location) -> io::Result<Option<Map<String, Value>>> {
        let index = location.index as usize;
        if let Some((_, _, objects)) = self.open.get(&location.file) {
            return match objects.get(index) {
                Some(raw) => Ok(serde_json::from_str(raw.get())?),
                None => Ok(None),
            };
        }
        let Some((path, kind)) = self.written.get(&location.file) else {
            return Ok(None);
        };
        let document: Value = serde_json::from_slice(&fs::read(path)?)?;
        Ok(match document.get(kind.dir()).and_then(Value::as_array) {
            Some(objects) => match objects.get(index) {
                Some(Value::Object(object)) => Some(object.clone()),
                _ => None,
            },
            None => None,
        })
    }
}

/// Writes `{"<kind>": [...]}` with one object a line: valid JSON, and still easy to
/// read and grep.
fn write_file(path: &Path, kind: ObjectKind, objects: &[Box<RawValue>]) -> io::Result<()> {
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
    fn write(&mut self, _: &str, _: ObjectKind, _: &str, _: Deferred) -> io::Result<Location> {
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

    fn object(key: &str) -> Deferred {
        let json = format!("{{\"_key\":\"{key}\"}}");
        Box::new(move || Ok(RawValue::from_string(json).unwrap()))
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
