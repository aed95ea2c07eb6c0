//! TLS (feature `tls`): the record layer between a connection and its TCP socket, on rustls with
//! the ring provider, and the settings both sides use: the server's certificate (re-read on
//! SIGHUP) and the roots outbound `wss://` connections are verified against ([`Dialer`]).
//!
//! The loop reads and writes a `TlsStream` through the connection's transport (`transport.rs`)
//! as it would a socket. It is built on rustls's `unbuffered` API: the session keeps its state
//! only, and the records in flight live in buffers of the stream that exist only while they
//! hold bytes, so an idle TLS connection costs about 4.1 KB against 0.6 KB for a plain one
//! (rustls's buffered `Connection` kept a read buffer of 4 KiB or more: 7.8 KB;
//! docs/operations.md, "TLS"). The buffers come from the allocator, not the runtime's pool,
//! which the transport does not reach. Records are read, decrypted and encrypted in one set of
//! working buffers per thread ([`Scratch`]); a connection copies out only what is left over.

use std::cell::Cell;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_name;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::server::Config;
use crate::server::conn::Peer;
use crate::{info, warn};

/// Plaintext taken from the queue per write: one TLS record's worth, so what waits encrypted
/// in the session when the socket is full stays about one record (RFC 8446 §5.1: 2^14).
const WRITE_CHUNK: usize = 16 << 10;

/// Where Debian (and Ubuntu) keep the system's trusted roots; `SSL_CERT_FILE` overrides it.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Other systems' bundles, tried after it.
const OTHER_ROOTS: [&str; 3] =
    ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem", "/etc/ssl/ca-bundle.pem"];

/// The one crypto provider (ring: it builds with a C compiler alone; docs/operations.md).
/// rustls marks ring's provider deprecated because it has no post-quantum key exchange
/// (X25519MLKEM768); the choice and its cost are in docs/operations.md.
/// Key exchange X25519 first (ring's own order starts with P-384, several times the cost, and
/// a client sends its share for the first group).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    let mut p = rustls::crypto::ring::default_provider();
    p.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    Arc::new(p)
}

/// The answer to a plain HTTP request sent to a TLS listener (as nginx does, but without its
/// non-standard 497 status).
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 46\r\nConnection: close\r\n\r\nThis port speaks TLS: use https:// or wss://.\n";

/// A TLS session over a TCP socket, on rustls's unbuffered API: the session holds its state
/// only; the records in flight are in buffers of this stream that exist only while they hold
/// bytes (a partial record read, records not yet written, plaintext decrypted past the reader's
/// room or written before the handshake ended), so an idle connection holds none.
pub(crate) struct TlsStream {
    pub(crate) tcp: TcpStream,
    session: Session,
    peer: Peer,
    /// Why the session failed (logged once, kept for `on_connect_failed`).
    failure: Option<Box<str>>,
    /// The bytes held between calls, boxed and only while some are (an idle stream has none).
    spill: Option<Box<Spill>>,
    /// Whether the first byte from the peer was looked at (a server's plain HTTP check).
    checked: bool,
    /// The peer's close_notify came, or TCP EOF.
    ended: bool,
    /// This side's close_notify is queued.
    notified: bool,
    /// `outgoing` holds records a read made (session tickets after the handshake, say) that
    /// wait for the reader's answer, to go in the same write(2); the loop writes them at the
    /// end of its turn if no answer came.
    held: bool,
    /// The bytes the loop will still write, after which it closes (the close handshake is
    /// done): the close_notify goes with the last of them, in the same write(2). `usize::MAX`:
    /// not known.
    last: usize,
    /// The last pass took all its input and left the session open with nothing to send: a
    /// pass over no input would change nothing, and a read skips it (one of three per read).
    quiet: bool,
}

/// What a [`TlsStream`] holds between calls besides its session. A call takes it out of its box
/// ([`TlsStream::load`]) and puts it back ([`TlsStream::store`]), which frees the box once
/// nothing is held.
#[derive(Default)]
struct Spill {
    /// Ciphertext read and not yet processed.
    incoming: Vec<u8>,
    /// Ciphertext to write, from `sent` on.
    outgoing: Vec<u8>,
    sent: usize,
    /// Plaintext decrypted that the reader had no room for, from `plain_pos` on.
    plain_in: Vec<u8>,
    plain_pos: usize,
    /// Plaintext written before the handshake allowed it (a client's upgrade request).
    plain_out: Vec<u8>,
}

impl Spill {
    fn is_empty(&self) -> bool {
        self.incoming.is_empty()
            && self.outgoing.is_empty()
            && self.plain_in.is_empty()
            && self.plain_out.is_empty()
    }
}

enum Session {
    Server(rustls::server::UnbufferedServerConnection),
    Client(rustls::client::UnbufferedClientConnection),
}

/// One whole record of ciphertext (RFC 8446 §5.2: 2^14 + 256 bytes and a 5-byte header).
const READ_CHUNK: usize = (16 << 10) + 256 + 5;
/// Ciphertext read from the socket at a time, at most: four whole records, so a burst of large
/// messages takes one read(2), not one a record.
const READ_MAX: usize = 4 * READ_CHUNK;
/// Most plaintext held for the handshake to end (a client's request head).
const EARLY_MAX: usize = 64 << 10;
/// Most ciphertext held unprocessed: rustls takes a handshake message of up to 64 KiB, records
/// of up to 16 KiB + 2 KiB (RFC 8446 §5.2); past this the peer is sending what it cannot use.
const INCOMING_MAX: usize = 80 << 10;

/// The working buffers of every TLS stream of a thread (the loop runs on one): records read
/// are decrypted in `input`, records made are encoded in `output` and written from there,
/// small pieces are gathered in `plain`. Zeroed once and kept, so a read or a write costs no
/// allocation and no zeroing; a stream keeps in buffers of its own only what is left over (a
/// record cut by a read's end, ciphertext the socket did not take), so an idle one holds none.
#[derive(Default)]
struct Scratch {
    input: Vec<u8>,
    output: Vec<u8>,
    plain: Vec<u8>,
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// Runs `f` with the thread's [`Scratch`] (a fresh one if it is in use or gone: never a panic).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut scratch = SCRATCH.try_with(Cell::take).unwrap_or_default();
    let r = f(&mut scratch);
    let _ = SCRATCH.try_with(|c| c.set(scratch));
    r
}

/// Ciphertext a pass made, in the scratch's `output` from 0 to `len` (the buffer beyond is
/// initialised already: it grows, never shrinks, and is never zeroed again).
struct Records<'a> {
    buf: &'a mut Vec<u8>,
    len: usize,
}

impl Records<'_> {
    /// Appends what `f` writes into the room after `len`, growing the room to what `f` says it
    /// needs.
    fn append(
        &mut self,
        mut f: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
    ) -> io::Result<()> {
        let mut room = 1024;
        loop {
            if self.buf.len() < self.len + room {
                self.buf.resize(self.len + room, 0);
            }
            match f(&mut self.buf[self.len..]) {
                Ok(n) => {
                    self.len += n;
                    return Ok(());
                }
                Err(Some(needed)) if needed > self.buf.len() - self.len => room = needed,
                Err(_) => return Err(tls_error("a TLS record could not be encoded")),
            }
        }
    }
}

/// What a pass reads into and encrypts from, besides the session's own buffers.
struct Pass<'a> {
    /// Plaintext decrypted goes here, past `filled`.
    out: &'a mut [u8],
    filled: usize,
    /// Plaintext to encrypt if the session is open; `encrypted` is set to its length then.
    send: &'a [u8],
    encrypted: usize,
    /// This side's close_notify is to be queued.
    close_notify: bool,
}

impl<'a> Pass<'a> {
    fn send(send: &'a [u8], close_notify: bool) -> Self {
        Self { out: &mut [], filled: 0, send, encrypted: 0, close_notify }
    }
}

/// What one pass of the session over the ciphertext held came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Something was done: pass again.
    Progress,
    /// More ciphertext is needed (the handshake waits for the peer).
    NeedInput,
    /// Application data may be written (and more ciphertext read).
    Open,
    /// The peer closed (close_notify), or the session did.
    Closed,
}

/// The buffers a pass works on, apart from the session and its input.
struct Io<'a, 'r, 'p> {
    outgoing: &'a mut Records<'r>,
    pass: &'a mut Pass<'p>,
    plain_in: &'a mut Vec<u8>,
    plain_out: &'a mut Vec<u8>,
    notified: &'a mut bool,
}

fn tls_error(e: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn encrypt<Data>(
    w: &mut rustls::unbuffered::WriteTraffic<'_, Data>,
    data: &[u8],
    outgoing: &mut Records<'_>,
) -> io::Result<()> {
    outgoing.append(|out| {
        w.encrypt(data, out).map_err(|e| match e {
            rustls::unbuffered::EncryptError::InsufficientSize(s) => Some(s.required_size),
            _ => None,
        })
    })
}

/// Acts on one state of the session (RFC 8446's flow, as rustls reports it); returns the
/// ciphertext consumed and what came of it.
fn act<Data>(
    status: rustls::unbuffered::UnbufferedStatus<'_, '_, Data>,
    io: &mut Io<'_, '_, '_>,
) -> io::Result<(usize, Step)> {
    use rustls::unbuffered::{AppDataRecord, ConnectionState, EncodeError};
    let mut discard = status.discard;
    let state = status.state.map_err(tls_error)?;
    let step = match state {
        ConnectionState::ReadTraffic(mut r) => {
            while let Some(record) = r.next_record() {
                let AppDataRecord { discard: d, payload } = record.map_err(tls_error)?;
                discard += d;
                let p = &mut *io.pass;
                let k = payload.len().min(p.out.len() - p.filled);
                p.out[p.filled..p.filled + k].copy_from_slice(&payload[..k]);
                p.filled += k;
                io.plain_in.extend_from_slice(&payload[k..]);
            }
            Step::Progress
        }
        // Not reached: no 0-RTT is configured (max_early_data_size is 0).
        ConnectionState::ReadEarlyData(_) => return Err(tls_error("unexpected early data")),
        ConnectionState::EncodeTlsData(mut e) => {
            io.outgoing.append(|out| {
                e.encode(out).map_err(|e| match e {
                    EncodeError::InsufficientSize(s) => Some(s.required_size),
                    _ => None,
                })
            })?;
            Step::Progress
        }
        ConnectionState::TransmitTlsData(mut t) => {
            // What the caller owns is as good as sent: the stream writes it as the socket takes it.
            if !io.plain_out.is_empty() {
                if let Some(mut w) = t.may_encrypt_app_data() {
                    encrypt(&mut w, io.plain_out, io.outgoing)?;
                    *io.plain_out = Vec::new();
                }
            }
            t.done();
            Step::Progress
        }
        ConnectionState::BlockedHandshake => Step::NeedInput,
        ConnectionState::WriteTraffic(mut w) => {
            if !io.plain_out.is_empty() {
                encrypt(&mut w, io.plain_out, io.outgoing)?;
                *io.plain_out = Vec::new();
            }
            let p = &mut *io.pass;
            if !p.send.is_empty() && p.encrypted == 0 {
                encrypt(&mut w, p.send, io.outgoing)?;
                p.encrypted = p.send.len();
            }
            if p.close_notify && !*io.notified {
                io.outgoing.append(|out| {
                    w.queue_close_notify(out).map_err(|e| match e {
                        rustls::unbuffered::EncryptError::InsufficientSize(s) => {
                            Some(s.required_size)
                        }
                        _ => None,
                    })
                })?;
                *io.notified = true;
            }
            Step::Open
        }
        ConnectionState::PeerClosed | ConnectionState::Closed => Step::Closed,
        _ => Step::NeedInput,
    };
    Ok((discard, step))
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream").field("peer", &self.peer.get()).finish_non_exhaustive()
    }
}

impl TlsStream {
    fn new(tcp: TcpStream, peer: SocketAddr, session: Session) -> Self {
        let checked = matches!(session, Session::Client(_));
        Self {
            tcp,
            session,
            peer: Peer::new(peer),
            failure: None,
            spill: None,
            checked,
            ended: false,
            notified: false,
            held: false,
            last: usize::MAX,
            quiet: false,
        }
    }

    /// The bytes held, out of their box (none if there is no box).
    fn load(&mut self) -> Spill {
        self.spill.as_deref_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Puts back what [`TlsStream::load`] took: in the box, made if need be, or with nothing
    /// held, the box freed.
    fn store(&mut self, sp: Spill) {
        match self.spill.as_deref_mut() {
            _ if sp.is_empty() => self.spill = None,
            Some(b) => *b = sp,
            None => self.spill = Some(Box::new(sp)),
        }
    }

    pub(crate) fn wants_write(&self) -> bool {
        self.failure.is_none() && self.spill.as_ref().is_some_and(|b| b.sent < b.outgoing.len())
    }

    pub(crate) fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn fail(&mut self, sp: &mut Spill, why: String) -> io::Error {
        info!("tls failed", peer = self.peer.get(), error = why);
        let e = io::Error::new(io::ErrorKind::InvalidData, why.clone());
        self.failure = Some(why.into_boxed_str());
        sp.outgoing = Vec::new();
        sp.sent = 0;
        e
    }

    /// One pass of the session over the ciphertext `input`: plaintext into `p.out` (past
    /// `p.filled`), `p.send` encrypted if the session is open (`p.encrypted` set to its
    /// length), and, with `p.close_notify`, the alert queued; records made go to `rec`.
    /// Returns the bytes of `input` done with, and what came of the pass.
    fn pass(
        &mut self,
        sp: &mut Spill,
        input: &mut [u8],
        rec: &mut Records<'_>,
        p: &mut Pass<'_>,
    ) -> io::Result<(usize, Step)> {
        let mut io = Io {
            outgoing: rec,
            pass: p,
            plain_in: &mut sp.plain_in,
            plain_out: &mut sp.plain_out,
            notified: &mut self.notified,
        };
        let len = input.len();
        let result = match &mut self.session {
            Session::Server(s) => act(s.process_tls_records(input), &mut io),
            Session::Client(c) => act(c.process_tls_records(input), &mut io),
        };
        // Only a pass changes the session: until the next one, it stays as this one left it.
        self.quiet = matches!(result, Ok((done, Step::Open)) if done == len);
        result.map_err(|e| {
            // The alert rustls encoded for the peer (if any) goes out, if the socket takes it.
            let _ = self.emit(sp, rec);
            self.fail(sp, e.to_string())
        })
    }

    /// A pass over the ciphertext this stream holds (`incoming`), outside a read.
    fn pass_held(
        &mut self,
        sp: &mut Spill,
        rec: &mut Records<'_>,
        p: &mut Pass<'_>,
    ) -> io::Result<Step> {
        let mut incoming = std::mem::take(&mut sp.incoming);
        let result = self.pass(sp, &mut incoming, rec, p);
        if let Ok((discard, _)) = result {
            incoming.drain(..discard);
        }
        if !incoming.is_empty() {
            sp.incoming = incoming;
        }
        result.map(|(_, step)| step)
    }

    /// Writes the records a pass made: from the scratch straight to the socket, unless records
    /// of this stream wait before them; what the socket does not take is kept, in order.
    /// `Err(WouldBlock)` if the socket is full.
    fn emit(&mut self, sp: &mut Spill, rec: &mut Records<'_>) -> io::Result<()> {
        let len = std::mem::take(&mut rec.len);
        let records = &rec.buf[..len];
        if sp.sent < sp.outgoing.len() {
            sp.outgoing.extend_from_slice(records);
            return self.flush_tls(sp);
        }
        let mut done = 0;
        while done < len {
            match self.tcp.write(&records[done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    sp.outgoing = records[done..].to_vec();
                    sp.sent = 0;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Writes what this stream holds encrypted until none waits: `Err(WouldBlock)` if the
    /// socket is full.
    fn flush_tls(&mut self, sp: &mut Spill) -> io::Result<()> {
        self.held = false;
        while sp.sent < sp.outgoing.len() {
            match self.tcp.write(&sp.outgoing[sp.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sp.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        sp.outgoing = Vec::new();
        sp.sent = 0;
        Ok(())
    }

    /// [`TlsStream::emit`], a full socket being no error.
    fn emit_quietly(&mut self, sp: &mut Spill, rec: &mut Records<'_>) -> io::Result<()> {
        match self.emit(sp, rec) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(()),
        }
    }

    pub(crate) fn flushed(&mut self) -> bool {
        let mut sp = self.load();
        let result = self.flush_tls(&mut sp);
        self.store(sp);
        match result {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                self.failure = Some(e.to_string().into_boxed_str());
                true
            }
        }
    }

    /// Reads plaintext: fills `buf` unless the socket has no more now (so a short read means
    /// the socket is drained, as the loop's edge-triggered reads expect). `Ok(0)` at the end:
    /// the peer's close_notify, or TCP EOF without one (a truncation the WebSocket framing
    /// above detects: a frame cut short is never delivered).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(why) = &self.failure {
            return Err(io::Error::new(io::ErrorKind::InvalidData, why.to_string()));
        }
        let mut sp = self.load();
        let result = self.read_held(&mut sp, buf);
        self.store(sp);
        result
    }

    /// [`TlsStream::read`]: the plaintext held first, then the records.
    fn read_held(&mut self, sp: &mut Spill, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        if sp.plain_pos < sp.plain_in.len() {
            let k = (sp.plain_in.len() - sp.plain_pos).min(buf.len());
            buf[..k].copy_from_slice(&sp.plain_in[sp.plain_pos..sp.plain_pos + k]);
            sp.plain_pos += k;
            filled = k;
            if sp.plain_pos == sp.plain_in.len() {
                sp.plain_in = Vec::new();
                sp.plain_pos = 0;
            }
        }
        if filled == buf.len() {
            return Ok(filled);
        }
        with_scratch(|s| self.read_records(sp, buf, filled, s))
    }

    /// [`TlsStream::read`] past the plaintext held: the records held and then those read are
    /// decrypted in the scratch, and what is left of them (a record cut by the read's end) is
    /// kept.
    fn read_records(
        &mut self,
        sp: &mut Spill,
        buf: &mut [u8],
        mut filled: usize,
        scratch: &mut Scratch,
    ) -> io::Result<usize> {
        let Scratch { input, output, .. } = scratch;
        let need = sp.incoming.len().max(INCOMING_MAX) + READ_MAX;
        if input.len() < need {
            input.resize(need, 0);
        }
        let (mut pos, mut end) = (0, sp.incoming.len());
        input[..end].copy_from_slice(&sp.incoming);
        sp.incoming = Vec::new();
        let mut rec = Records { buf: output, len: 0 };
        // The last read(2) was short: the socket is drained.
        let mut drained = false;
        // No ciphertext held and the session quiet: the first pass would find it open and
        // nothing to do (what it comes to is written out below); read at once.
        let mut skip = end == 0 && self.quiet;
        let result = loop {
            if filled == buf.len() {
                break Ok(filled);
            }
            let (discard, step) = if std::mem::take(&mut skip) {
                (0, Step::Open)
            } else {
                let mut p =
                    Pass { out: &mut *buf, filled, send: &[], encrypted: 0, close_notify: false };
                let r = match self.pass(sp, &mut input[pos..end], &mut rec, &mut p) {
                    Ok(r) => r,
                    Err(e) => break Err(e),
                };
                filled = p.filled;
                r
            };
            pos += discard;
            if !sp.plain_in.is_empty() {
                // The reader's room is used up; the rest is served first next time.
                break Ok(filled);
            }
            match step {
                Step::Progress => continue,
                Step::Closed => {
                    self.ended = true;
                    break Ok(filled);
                }
                Step::NeedInput | Step::Open if self.ended => break Ok(filled),
                // No read(2) only to hear `WouldBlock` (with nothing read, one more: it may be
                // the peer's EOF, which the loop reads on to after its FIN).
                Step::NeedInput | Step::Open if drained && filled > 0 => break Ok(filled),
                Step::NeedInput | Step::Open => {}
            }
            // What the session owes the peer (a handshake flight, a key update) goes before
            // the next read(2), in one write(2) however many records the passes made.
            if let Err(e) = self.emit_quietly(sp, &mut rec) {
                break Err(e);
            }
            if pos > 0 {
                input.copy_within(pos..end, 0);
                end -= pos;
                pos = 0;
            }
            if end > INCOMING_MAX {
                break Err(
                    self.fail(sp, format!("over {INCOMING_MAX} bytes of TLS records unprocessed"))
                );
            }
            let want = READ_MAX.min(buf.len() - filled).max(READ_CHUNK);
            match self.tcp.read(&mut input[end..end + want]) {
                Ok(0) => {
                    self.ended = true;
                    break Ok(filled);
                }
                Ok(n) if !self.checked => {
                    self.checked = true;
                    if input[end].is_ascii_uppercase() {
                        break Err(self.answer_plain_http(sp));
                    }
                    end += n;
                    drained = n < want;
                }
                Ok(n) => {
                    end += n;
                    drained = n < want;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => break Ok(filled),
                Err(e) => break Err(e),
            }
        };
        if self.failure.is_some() {
            return result;
        }
        // Records the last passes made (the alert a failed pass made is sent by `pass`): with
        // plaintext read, they wait for the answer to it (`held`).
        let emitted = match (filled, rec.len) {
            (_, 0) => Ok(()),
            (0, _) => self.emit_quietly(sp, &mut rec),
            (_, len) => {
                sp.outgoing.extend_from_slice(&rec.buf[..len]);
                self.held = true;
                Ok(())
            }
        };
        if pos < end {
            sp.incoming = input[pos..end].to_vec();
        }
        result.and_then(|n| emitted.map(|()| n))
    }

    /// The first byte a client sends on a TLS listener is a handshake record's (22); a capital
    /// letter is a plain HTTP request (RFC 9112 §3: a method is a token, in practice upper
    /// case), answered with a short 400 in plain text and closed. The rest of the request is
    /// read first, so that closing does not reset the answer away.
    fn answer_plain_http(&mut self, sp: &mut Spill) -> io::Error {
        let mut sink = [0u8; 4096];
        for _ in 0..4 {
            if !matches!(self.tcp.read(&mut sink), Ok(n) if n > 0) {
                break;
            }
        }
        let _ = self.tcp.write(PLAIN_HTTP_ANSWER);
        let _ = self.tcp.shutdown(Shutdown::Write);
        self.fail(sp, "a plain HTTP request on a TLS listener (answered 400)".into())
    }

    /// Encrypts up to [`WRITE_CHUNK`] of `bufs` once what was encrypted before is written.
    /// Before the handshake lets application data go, up to 64 KiB is held for it.
    pub(crate) fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if let Some(why) = &self.failure {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, why.to_string()));
        }
        let mut sp = self.load();
        // Records held for this answer go with it (`emit`); others must be written first.
        let result = match std::mem::take(&mut self.held) {
            false => self.flush_tls(&mut sp),
            true => Ok(()),
        };
        let result = result.and_then(|()| with_scratch(|s| self.write_records(&mut sp, bufs, s)));
        self.store(sp);
        result
    }

    /// The loop will write `queued` more bytes and then close: the close_notify is sent with
    /// the last of them (RFC 8446 §6.1), not in a write(2) of its own.
    pub(crate) fn last_write(&mut self, queued: usize) {
        self.last = queued;
    }

    fn write_records(
        &mut self,
        sp: &mut Spill,
        bufs: &[IoSlice<'_>],
        scratch: &mut Scratch,
    ) -> io::Result<usize> {
        let Scratch { output, plain, .. } = scratch;
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        let data: &[u8] = if first.len() >= WRITE_CHUNK || bufs.len() == 1 {
            &first[..first.len().min(WRITE_CHUNK)]
        } else {
            // Small pieces (a frame header and its payload) go in one record.
            plain.clear();
            for b in bufs {
                let k = b.len().min(WRITE_CHUNK - plain.len());
                plain.extend_from_slice(&b[..k]);
                if plain.len() == WRITE_CHUNK {
                    break;
                }
            }
            plain
        };
        if data.is_empty() {
            return Ok(0);
        }
        let mut rec = Records { buf: output, len: 0 };
        let mut p = Pass::send(data, self.last == data.len());
        loop {
            match self.pass_held(sp, &mut rec, &mut p)? {
                Step::Progress => continue,
                Step::Open => break,
                Step::NeedInput => {
                    if sp.plain_out.len() + data.len() <= EARLY_MAX {
                        sp.plain_out.extend_from_slice(data);
                        p.encrypted = data.len();
                    }
                    break;
                }
                Step::Closed => return Err(io::ErrorKind::BrokenPipe.into()),
            }
        }
        self.emit_quietly(sp, &mut rec)?;
        if self.last != usize::MAX {
            self.last = self.last.saturating_sub(p.encrypted);
        }
        if p.encrypted == 0 { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(p.encrypted) }
    }

    /// Queues this side's close_notify (RFC 8446 §6.1) if the session is open, and writes what
    /// the socket takes now.
    fn close_notify(&mut self) {
        if self.failure.is_some() || self.notified {
            return;
        }
        let mut sp = self.load();
        with_scratch(|s| {
            let mut rec = Records { buf: &mut s.output, len: 0 };
            let mut p = Pass::send(&[], true);
            for _ in 0..8 {
                match self.pass_held(&mut sp, &mut rec, &mut p) {
                    Ok(Step::Progress) => continue,
                    _ => break,
                }
            }
            let _ = self.emit(&mut sp, &mut rec);
        });
        self.store(sp);
    }

    pub(crate) fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read {
            self.close_notify();
        }
        self.tcp.shutdown(how)
    }
}

impl Drop for TlsStream {
    /// A connection the loop lets go of ends with a close_notify (RFC 8446 §6.1), written if
    /// the socket takes it now (a shutdown may have sent it already: it is sent once).
    fn drop(&mut self) {
        self.close_notify();
    }
}

/// Reads PEM certificate chains and their private keys into a server configuration (ALPN
/// `http/1.1`: RFC 7301 §3.1, the one protocol weir speaks over TLS). With several pairs, a
/// client hello gets the first pair whose certificate is valid for the name it asks for (SNI,
/// RFC 6066 §3), and the first pair when it asks for none or for a name none has.
///
/// # Errors
/// No pair; a file that cannot be read, holds no certificate or no key; a key that does not
/// match its certificate.
pub fn server_config(pairs: &[(PathBuf, PathBuf)]) -> Result<Arc<ServerConfig>, String> {
    let provider = provider();
    let keys = pairs
        .iter()
        .map(|(cert, key)| certified_key(cert, key, &provider))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err("no certificate and key".into());
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ByName(keys)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One certificate chain and its private key, checked to match.
fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let both = |e: rustls::Error| format!("{} and {}: {e}", cert.display(), key.display());
    let ck = CertifiedKey::from_der(chain, key_der, provider).map_err(both)?;
    // The leaf must parse for the name checks below (from_der may not have parsed it).
    ck.end_entity_cert().and_then(ParsedCertificate::try_from).map_err(both)?;
    Ok(Arc::new(ck))
}

/// The certificates a TLS listener presents, in `--tls-cert` order: the first valid for the
/// client hello's name (RFC 6066 §3), else the first.
#[derive(Debug)]
struct ByName(Vec<Arc<CertifiedKey>>);

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let first = self.0.first()?;
        let wanted = match hello.server_name().map(ServerName::try_from) {
            Some(Ok(name)) if self.0.len() > 1 => name,
            _ => return Some(Arc::clone(first)),
        };
        // The same check a client makes (webpki, through rustls): no name parsing of our own.
        let valid = |ck: &&Arc<CertifiedKey>| {
            ck.end_entity_cert()
                .and_then(ParsedCertificate::try_from)
                .and_then(|leaf| verify_server_name(&leaf, &wanted))
                .is_ok()
        };
        Some(Arc::clone(self.0.iter().find(valid).unwrap_or(first)))
    }
}

/// How outbound `wss://` connections are made: the roots the server's certificate must chain
/// to, and the name it must carry (sent as SNI, RFC 6066 §3). Made once, used for every
/// connection (routes, `weir client`, and whatever dials next).
#[derive(Debug, Clone)]
pub struct Dialer {
    config: Arc<ClientConfig>,
}

impl Dialer {
    /// Roots from `ca` (PEM), else from the system bundle (`SSL_CERT_FILE`, else
    /// [`SYSTEM_ROOTS`], else other systems' usual places). `insecure` verifies nothing but
    /// the handshake's own signatures: for tests only, and it says so in the log.
    ///
    /// # Errors
    /// No bundle found, or a bundle with no usable certificate in it.
    pub fn new(ca: Option<&Path>, insecure: bool) -> Result<Self, String> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let mut config = if insecure {
            warn!("--insecure: the TLS peers' certificates are NOT verified; for testing only");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerifier(
                    provider().signature_verification_algorithms,
                )))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(roots(ca)?).with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { config: Arc::new(config) })
    }

    /// A client session for `name` (a DNS name, or an IP address that must be in the
    /// certificate's subject alternative names).
    ///
    /// # Errors
    /// `name` is neither.
    pub fn session(
        &self,
        name: &str,
    ) -> Result<rustls::client::UnbufferedClientConnection, String> {
        let name = ServerName::try_from(name.to_string())
            .map_err(|_| format!("{name}: not a DNS name or an IP address"))?;
        rustls::client::UnbufferedClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| e.to_string())
    }
}

fn roots(ca: Option<&Path>) -> Result<RootCertStore, String> {
    let path: PathBuf = match ca {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("SSL_CERT_FILE") {
            Some(p) => PathBuf::from(p),
            None => std::iter::once(SYSTEM_ROOTS)
                .chain(OTHER_ROOTS)
                .map(PathBuf::from)
                .find(|p| p.exists())
                .ok_or_else(|| {
                    format!("no system roots at {SYSTEM_ROOTS} (install ca-certificates, or give --tls-ca FILE)")
                })?,
        },
    };
    let certs = CertificateDer::pem_file_iter(&path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("{}: no usable certificate in it", path.display()));
    }
    Ok(store)
}

/// `--insecure`: any certificate for any name, but the handshake's signatures are still checked
/// (so the session keys are the peer's, whoever it is).
#[derive(Debug)]
struct NoVerifier(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The runtime's TLS settings: the server's (for the TLS listeners) and the dialer (made when
/// the first outbound `wss://` connection needs it, or at start-up with `--tls-ca` or
/// `--insecure`).
#[derive(Debug, Default)]
pub(crate) struct TlsContext {
    server: Option<Arc<ServerConfig>>,
    /// The certificate and key files, the default pair first (`tls_cert`, then `tls_more`).
    files: Vec<(PathBuf, PathBuf)>,
    dialer: Option<Dialer>,
    ca: Option<PathBuf>,
    insecure: bool,
}

impl TlsContext {
    pub(crate) fn new(config: &Config) -> io::Result<Self> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let mut files = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => vec![(c.clone(), k.clone())],
            (None, None) if config.listen_tls.is_empty() && config.tls_more.is_empty() => {
                Vec::new()
            }
            _ => return Err(invalid("TLS listeners need both --tls-cert and --tls-key".into())),
        };
        files.extend(config.tls_more.iter().cloned());
        let server = match files.is_empty() {
            false => Some(server_config(&files).map_err(invalid)?),
            true => None,
        };
        let mut tls = Self {
            server,
            files,
            dialer: None,
            ca: config.tls_ca.clone(),
            insecure: config.tls_insecure,
        };
        if tls.ca.is_some() || tls.insecure {
            tls.dialer = Some(Dialer::new(tls.ca.as_deref(), tls.insecure).map_err(invalid)?);
        }
        Ok(tls)
    }

    /// SIGHUP: the certificates and keys are read again; connections open keep the session they
    /// have, new ones get the new pairs. If any pair does not load, all the old ones stay.
    pub(crate) fn reload(&mut self) {
        let Some((cert, key)) = self.files.first() else {
            info!("SIGHUP: no TLS certificate to reload");
            return;
        };
        match server_config(&self.files) {
            Ok(config) => {
                self.server = Some(config);
                info!(
                    "tls certificate reloaded",
                    cert = cert.display(),
                    key = key.display(),
                    pairs = self.files.len()
                );
            }
            Err(e) => warn!("tls reload failed: keeping the certificate loaded before", error = e),
        }
    }

    /// A connection accepted on a listener (`tls`: one of `--listen-tls`): its TLS stream, or
    /// `None` for a plain one (`Transport::accepted` wraps either).
    ///
    /// # Errors
    /// rustls refused a server session (only for a configuration `server_config` would not
    /// have returned).
    pub(crate) fn accept(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        tls: bool,
    ) -> io::Result<Result<TlsStream, TcpStream>> {
        match (&self.server, tls) {
            (Some(config), true) => {
                let session = rustls::server::UnbufferedServerConnection::new(Arc::clone(config))
                    .map_err(|e| io::Error::other(e.to_string()))?;
                Ok(Ok(TlsStream::new(tcp, peer, Session::Server(session))))
            }
            _ => Ok(Err(tcp)),
        }
    }

    /// An outbound connection to `name` over TLS.
    pub(crate) fn dial(&mut self, tcp: TcpStream, name: &str) -> io::Result<TlsStream> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        if self.dialer.is_none() {
            self.dialer = Some(Dialer::new(self.ca.as_deref(), self.insecure).map_err(invalid)?);
        }
        let Some(dialer) = &self.dialer else { return Err(io::ErrorKind::Other.into()) };
        let session = dialer.session(name).map_err(invalid)?;
        // Not connected yet, maybe: the address is then unknown (it is for the log only).
        let peer = tcp.peer_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        Ok(TlsStream::new(tcp, peer, Session::Client(session)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/operations.md, "TLS", Memory: an idle TLS connection holds its rustls session and
    // weir's fields around it, whose buffers are boxed apart and only while they hold bytes.
    // (This is the test build's size: mio's `TcpStream` is 16 bytes with debug assertions, 4
    // in a release build, where weir's fields are 56 bytes.)
    #[test]
    fn a_tls_stream_keeps_little_besides_its_session() {
        let ours = std::mem::size_of::<TlsStream>() - std::mem::size_of::<Session>();
        assert!(ours <= 80, "{ours}");
        assert_eq!(std::mem::size_of::<Option<Box<Spill>>>(), 8);
    }
}
