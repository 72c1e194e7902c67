//! The one place that touches `wasi:http`: a [`Transport`] that sends a batch of GET
//! requests concurrently, driving every response with `wasi:io/poll`, and reads each
//! body to the end.

use std::time::Duration;

use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::poll::{self, Pollable};
use wasip2::io::streams::{InputStream, StreamError};

use crate::transport::{HttpRequest, HttpResponse, Transport, TransportError};

/// Bytes asked of a body stream per read.
const READ_CHUNK: u64 = 64 * 1024;
/// A sanity cap of our own; the host enforces its (usually lower) policy cap too.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// Per-request time limits, passed to the host as `request-options`.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

/// `wasi:http` as a [`Transport`]: requests in flight are driven together with
/// `wasi:io/poll`, and each is handed back as soon as its body is read.
pub struct WasiTransport {
    timeouts: Timeouts,
    /// Requests in flight: the caller's id, the authority (for error messages), state.
    in_flight: Vec<(u64, String, InFlight)>,
}

impl WasiTransport {
    pub fn new(timeouts: Timeouts) -> WasiTransport {
        WasiTransport {
            timeouts,
            in_flight: Vec::new(),
        }
    }
}

/// Where one request in flight stands.
enum InFlight {
    Waiting {
        future: FutureIncomingResponse,
    },
    Reading {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        // Field order is drop order: the stream is a child of the body, the body a
        // child of the response, and children must go first (see `advance` for the
        // explicit order when the fields are taken apart).
        stream: InputStream,
        incoming: IncomingBody,
        _response: IncomingResponse,
    },
    Done(Result<HttpResponse, TransportError>),
}

impl Transport for WasiTransport {
    fn start(&mut self, id: u64, request: &HttpRequest) {
        let state = match self.send(request) {
            Ok(future) => InFlight::Waiting { future },
            Err(error) => InFlight::Done(Err(error)),
        };
        self.in_flight.push((id, request.authority.clone(), state));
    }

    fn next_response(&mut self) -> Option<(u64, Result<HttpResponse, TransportError>)> {
        loop {
            let done = self
                .in_flight
                .iter()
                .position(|(_, _, state)| matches!(state, InFlight::Done(_)));
            if let Some(position) = done {
                let (id, _, state) = self.in_flight.remove(position);
                let InFlight::Done(result) = state else {
                    unreachable!("found done above")
                };
                return Some((id, result));
            }
            if self.in_flight.is_empty() {
                return None;
            }
            let ready: Vec<usize> = {
                let pollables: Vec<Pollable> = self
                    .in_flight
                    .iter()
                    .map(|(_, _, state)| match state {
                        InFlight::Waiting { future } => future.subscribe(),
                        InFlight::Reading { stream, .. } => stream.subscribe(),
                        InFlight::Done(_) => unreachable!("none is done here"),
                    })
                    .collect();
                let refs: Vec<&Pollable> = pollables.iter().collect();
                poll::poll(&refs).into_iter().map(|i| i as usize).collect()
                // Pollables are children of the futures and streams: dropped here,
                // before `advance` may drop their parents.
            };
            for index in ready {
                let (_, authority, state) = &mut self.in_flight[index];
                let current = std::mem::replace(
                    state,
                    InFlight::Done(Err(TransportError::Other(String::new()))),
                );
                *state = advance(current, authority);
            }
        }
    }

    fn cancel_all(&mut self) {
        // Dropping a future or a body abandons its request.
        self.in_flight.clear();
    }

    fn now(&mut self) -> Duration {
        Duration::from_nanos(monotonic_clock::now())
    }

    fn sleep(&mut self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        monotonic_clock::subscribe_duration(nanos).block();
    }

    fn random_unit(&mut self) -> f64 {
        // 53 random bits make a uniform double in [0, 1).
        (wasip2::random::random::get_random_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl WasiTransport {
    /// Builds and sends one request; the response arrives on the returned future.
    fn send(&self, request: &HttpRequest) -> Result<FutureIncomingResponse, TransportError> {
        let other = |what: &str| TransportError::Other(format!("cannot build request: {what}"));
        let entries: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
            .collect();
        let headers = Fields::from_list(&entries).map_err(|e| other(&format!("headers: {e:?}")))?;
        let outgoing = OutgoingRequest::new(headers);
        outgoing
            .set_method(&Method::Get)
            .map_err(|()| other("method"))?;
        let scheme = match request.scheme.as_str() {
            "http" => Scheme::Http,
            _ => Scheme::Https,
        };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| other("scheme"))?;
        outgoing
            .set_authority(Some(&request.authority))
            .map_err(|()| other("authority"))?;
        outgoing
            .set_path_with_query(Some(&request.path_and_query))
            .map_err(|()| other("path"))?;
        let body = outgoing.body().map_err(|()| other("body"))?;
        OutgoingBody::finish(body, None).map_err(|e| map_error_code(e, &request.authority))?;

        let options = RequestOptions::new();
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // The host may not support every option; a refusal leaves its default in place.
        let _ = options.set_connect_timeout(Some(nanos(self.timeouts.connect)));
        let _ = options.set_first_byte_timeout(Some(nanos(self.timeouts.first_byte)));
        let _ = options.set_between_bytes_timeout(Some(nanos(self.timeouts.between_bytes)));
        outgoing_handler::handle(outgoing, Some(options))
            .map_err(|e| map_error_code(e, &request.authority))
    }
}

/// Moves one request a step forward after its pollable fired.
fn advance(state: InFlight, authority: &str) -> InFlight {
    match state {
        InFlight::Waiting { future } => match future.get() {
            None => InFlight::Waiting { future },
            Some(Err(())) => {
                InFlight::Done(Err(TransportError::Other("response already taken".into())))
            }
            Some(Ok(Err(code))) => InFlight::Done(Err(map_error_code(code, authority))),
            Some(Ok(Ok(response))) => {
                let status = response.status();
                let headers = response
                    .headers()
                    .entries()
                    .into_iter()
                    .map(|(name, value)| {
                        (
                            name.to_ascii_lowercase(),
                            String::from_utf8_lossy(&value).into_owned(),
                        )
                    })
                    .collect();
                let Ok(incoming) = response.consume() else {
                    return InFlight::Done(Err(TransportError::Other("no response body".into())));
                };
                let Ok(stream) = incoming.stream() else {
                    return InFlight::Done(Err(TransportError::Other("no body stream".into())));
                };
                InFlight::Reading {
                    status,
                    headers,
                    body: Vec::new(),
                    stream,
                    incoming,
                    _response: response,
                }
            }
        },
        InFlight::Reading {
            status,
            headers,
            mut body,
            stream,
            incoming,
            _response,
        } => {
            let outcome = loop {
                match stream.read(READ_CHUNK) {
                    // Nothing buffered yet: wait for the pollable again.
                    Ok(chunk) if chunk.is_empty() => {
                        return InFlight::Reading {
                            status,
                            headers,
                            body,
                            stream,
                            incoming,
                            _response,
                        };
                    }
                    Ok(chunk) => {
                        body.extend_from_slice(&chunk);
                        if body.len() > MAX_BODY_BYTES {
                            break Err(TransportError::TooLarge(format!(
                                "more than {MAX_BODY_BYTES} bytes"
                            )));
                        }
                    }
                    Err(StreamError::Closed) => break Ok(()),
                    Err(StreamError::LastOperationFailed(error)) => {
                        let detail = error.to_debug_string();
                        let result = match wasip2::http::types::http_error_code(&error) {
                            Some(code) => map_error_code(code, authority),
                            // The host's size cap can arrive without its error code.
                            None if detail.contains("body size") => {
                                TransportError::TooLarge(format!("body read failed: {detail}"))
                            }
                            None => {
                                TransportError::Connection(format!("body read failed: {detail}"))
                            }
                        };
                        break Err(match result {
                            // A body cut short is a dropped connection: worth a retry.
                            TransportError::Other(what) => TransportError::Connection(what),
                            other => other,
                        });
                    }
                }
            };
            // Children before parents, explicitly: locals would drop in reverse order of
            // binding (the response first), and the host traps on a parent dropped
            // before its children.
            drop(stream);
            // Trailers are not used; finishing releases the body.
            drop(IncomingBody::finish(incoming));
            drop(_response);
            InFlight::Done(outcome.map(|()| HttpResponse {
                status,
                headers,
                body,
            }))
        }
        done @ InFlight::Done(_) => done,
    }
}

fn map_error_code(code: ErrorCode, authority: &str) -> TransportError {
    match code {
        ErrorCode::HttpRequestDenied => TransportError::Denied {
            authority: authority.to_owned(),
        },
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => TransportError::Timeout(format!("{code:?}")),
        ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::ConnectionLimitReached
        | ErrorCode::DestinationUnavailable
        | ErrorCode::HttpResponseIncomplete
        | ErrorCode::HttpProtocolError => TransportError::Connection(format!("{code:?}")),
        ErrorCode::HttpResponseBodySize(size) => {
            TransportError::TooLarge(format!("body size {size:?} over the host's cap"))
        }
        other => TransportError::Other(format!("{other:?}")),
    }
}
