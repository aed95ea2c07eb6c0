//! Echo server on tokio-tungstenite: current-thread tokio runtime, one task per connection.
//!
//! Messages are read while they are ready and fed to the sink, then flushed once (a batch per
//! wake-up). Pings are answered by tungstenite itself (the pong goes out with the next flush);
//! a close is answered by tungstenite too, and ends the connection.
//!
//! Usage: `tokio-tungstenite-echo [ADDR]` (default `127.0.0.1:9001`; port 0 picks a free port).

#[path = "../shared/tungstenite_echo.rs"]
mod tungstenite_echo;

use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    tungstenite_echo::announce(listener.local_addr()?)?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let _ = tungstenite_echo::serve(stream).await;
        });
    }
}
