//! Where an idle rustls server session's bytes are (README.md). Not a test: a measurement.
#![allow(unsafe_code, clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::unbuffered::ConnectionState;

/// Counts live bytes and allocations; while `TRACK` is on, remembers each allocation (up to
/// `SLOTS`) so the ones still live at the end can be listed.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);
static TRACK: AtomicBool = AtomicBool::new(false);
static WHY: AtomicBool = AtomicBool::new(false);
static IN_WHY: AtomicBool = AtomicBool::new(false);
const SLOTS: usize = 256;
static TABLE: [(AtomicUsize, AtomicUsize); SLOTS] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; SLOTS];

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        LIVE.fetch_add(l.size(), Relaxed);
        COUNT.fetch_add(1, Relaxed);
        if TRACK.load(Relaxed) && !IN_WHY.load(Relaxed) {
            if let Some(slot) = TABLE.iter().find(|s| s.0.load(Relaxed) == 0) {
                slot.0.store(p as usize, Relaxed);
                slot.1.store(l.size(), Relaxed);
            }
            if WHY.load(Relaxed) {
                IN_WHY.store(true, Relaxed);
                let bt = std::backtrace::Backtrace::force_capture().to_string();
                let frames: Vec<&str> = bt
                    .lines()
                    .filter(|f| f.contains("rustls::") && !f.trim_start().starts_with("at "))
                    .take(3)
                    .map(str::trim)
                    .collect();
                eprintln!("alloc {:#x} {} B: {}", p as usize, l.size(), frames.join(" < "));
                IN_WHY.store(false, Relaxed);
            }
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        COUNT.fetch_sub(1, Relaxed);
        if let Some(slot) = TABLE.iter().find(|s| s.0.load(Relaxed) == p as usize) {
            slot.0.store(0, Relaxed);
        }
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// weir's provider (src/server/tls.rs): ring, X25519 first.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    let mut p = rustls::crypto::ring::default_provider();
    p.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    p
}

type Server = rustls::server::UnbufferedServerConnection;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |f: &str| args.iter().any(|a| a == f);
    let suite = args.first().map_or("aes128", String::as_str);
    let tickets =
        args.iter().position(|a| a == "--tickets").map_or(2, |i| args[i + 1].parse().unwrap());
    let dir = std::env::var("TLS_DIR").unwrap_or_else(|_| "../results/tls".into());
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(format!("{dir}/cert.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/key.pem")).unwrap();
    let mut sc = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    sc.send_tls13_tickets = tickets;
    let sc = Arc::new(sc);
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(format!("{dir}/ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let want = match suite {
        "aes128" => rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
        "aes256" => rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
        "chacha" => rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        other => panic!("{other}: aes128, aes256 or chacha"),
    };
    let mut cp = provider();
    cp.cipher_suites.retain(|s| s.suite() == want);
    let mut cc = rustls::ClientConfig::builder_with_provider(Arc::new(cp))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cc.alpn_protocols = vec![b"http/1.1".to_vec()];
    cc.resumption = rustls::client::Resumption::disabled();
    let cc = Arc::new(cc);

    if has("--speed") {
        return speed(suite, &sc, &cc);
    }
    WHY.store(has("--why"), Relaxed);
    let n = 1000;
    // Boxed as weir boxes its TlsStream: each session's inline part is its own allocation.
    let mut servers: Vec<Box<Server>> = Vec::with_capacity(n);
    let mut clients = Vec::with_capacity(n);
    let (live0, count0) = (LIVE.load(Relaxed), COUNT.load(Relaxed));
    for i in 0..n {
        let track = i == n - 1;
        let (s, c) = handshake(&sc, &cc, track);
        servers.push(s);
        clients.push(c);
    }
    // The clients' heap goes; their vector, allocated before `live0`, stays. (With --why the
    // backtraces' own caches count too: read the list, not the average.)
    clients.clear();
    let (live, count) = (LIVE.load(Relaxed) - live0, COUNT.load(Relaxed) - count0);
    let inline = std::mem::size_of::<Server>();
    let mut sizes: Vec<usize> =
        TABLE.iter().filter(|s| s.0.load(Relaxed) != 0).map(|s| s.1.load(Relaxed)).collect();
    sizes.sort_unstable();
    // glibc: a chunk is the request plus 8 bytes, rounded up to 16 (32 at least).
    let chunk = |b: usize| ((b + 8 + 15) & !15).max(32);
    let heap: usize = sizes.iter().sum();
    println!(
        "{suite}, {tickets} session tickets: per server session {} B in {:.2} allocations \
         (inline {inline} B, heap {} B); the last one's heap: {sizes:?} = {heap} B, \
         {} B in glibc chunks",
        live / n,
        count as f64 / n as f64,
        live / n - inline,
        sizes.iter().map(|&b| chunk(b)).sum::<usize>()
    );
    // What the allocations above are made of (rustls's ring provider keeps, per direction, a
    // `Tls13MessageEncrypter`/`Decrypter`: ring's `LessSafeKey` and a 12-byte IV).
    println!(
        "size_of: UnbufferedServerConnection {inline} B, UnbufferedClientConnection {} B, \
         ring::aead::LessSafeKey {} B (+ 12 B IV, rounded: the 560 B key allocations)",
        std::mem::size_of::<rustls::client::UnbufferedClientConnection>(),
        std::mem::size_of::<ring::aead::LessSafeKey>(),
    );
    if WHY.load(Relaxed) {
        // The `alloc` lines above with these addresses say who made what the session keeps.
        for s in TABLE.iter().filter(|s| s.0.load(Relaxed) != 0) {
            println!("held: {:#x} {} B", s.0.load(Relaxed), s.1.load(Relaxed));
        }
    }
    let _ = std::io::stdout().flush();
    drop(servers);
}

/// Drives the server over `incoming` until it waits for the peer; what it sends goes to `out`.
fn server_step(s: &mut Server, incoming: &mut Vec<u8>, out: &mut Vec<u8>) {
    loop {
        let st = s.process_tls_records(incoming);
        let discard = st.discard;
        let more = match st.state.unwrap() {
            ConnectionState::EncodeTlsData(mut e) => {
                let mut b = vec![0u8; 16 << 10];
                let k = e.encode(&mut b).unwrap();
                out.extend_from_slice(&b[..k]);
                true
            }
            ConnectionState::TransmitTlsData(t) => {
                t.done();
                true
            }
            ConnectionState::ReadTraffic(mut r) => {
                while let Some(rec) = r.next_record() {
                    rec.unwrap();
                }
                true
            }
            _ => false,
        };
        incoming.drain(..discard);
        if !more {
            return;
        }
    }
}

/// A handshake and one record each way (the upgrade request and its answer), in memory; the
/// server's allocations are tracked when `track`.
fn handshake(
    sc: &Arc<rustls::ServerConfig>,
    cc: &Arc<rustls::ClientConfig>,
    track: bool,
) -> (Box<Server>, rustls::ClientConnection) {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = rustls::ClientConnection::new(Arc::clone(cc), name).unwrap();
    TRACK.store(track, Relaxed);
    let mut s = Box::new(Server::new(Arc::clone(sc)).unwrap());
    TRACK.store(false, Relaxed);
    c.writer().write_all(b"GET /echo HTTP/1.1\r\n\r\n").unwrap();
    for _ in 0..10 {
        let mut to_s = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut to_s).unwrap();
        }
        let mut to_c = Vec::new();
        TRACK.store(track, Relaxed);
        server_step(&mut s, &mut to_s, &mut to_c);
        TRACK.store(false, Relaxed);
        let mut rd = &to_c[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
        }
        if !c.is_handshaking() && !c.wants_write() {
            break;
        }
    }
    TRACK.store(track, Relaxed);
    let mut none = Vec::new();
    let st = s.process_tls_records(&mut none);
    let ConnectionState::WriteTraffic(mut w) = st.state.unwrap() else { panic!("not open") };
    let mut b = vec![0u8; 256];
    let k = w.encrypt(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", &mut b).unwrap();
    TRACK.store(false, Relaxed);
    let mut rd = &b[..k];
    c.read_tls(&mut rd).unwrap();
    c.process_new_packets().unwrap();
    (s, c)
}

/// Time to encrypt one record of 64 B and of 16 KiB with the suite negotiated.
fn speed(suite: &str, sc: &Arc<rustls::ServerConfig>, cc: &Arc<rustls::ClientConfig>) {
    let (mut s, _c) = handshake(sc, cc, false);
    let mut none = Vec::new();
    for (size, iters) in [(64usize, 1_000_000), (16 << 10, 50_000)] {
        let data = vec![7u8; size];
        let mut out = vec![0u8; size + 64];
        let st = s.process_tls_records(&mut none);
        let ConnectionState::WriteTraffic(mut w) = st.state.unwrap() else { panic!("not open") };
        let t = std::time::Instant::now();
        for _ in 0..iters {
            std::hint::black_box(w.encrypt(&data, &mut out).unwrap());
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{suite}: a {size} B record encrypted in {:.0} ns ({:.0} MB/s)",
            secs / f64::from(iters) * 1e9,
            (size as f64 * f64::from(iters)) / secs / 1e6
        );
    }
}
