//! Echo server on tokio-tungstenite: current-thread tokio runtime, one task per connection.
//!
//! Messages are read while they are ready and fed to the sink, then flushed once (a batch per
//! wake-up). Pings are answered by tungstenite itself (the pong goes out with the next flush);
//! a close is answered by tungstenite too, and ends the connection.
//!
//! Usage: `tokio-tungstenite-echo [ADDR]` (default `127.0.0.1:9001`; port 0 picks a free port).

use std::io::Write;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const MAX_SIZE: usize = 64 << 20;

async fn serve(stream: TcpStream) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let _ = stream.set_nodelay(true);
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_SIZE)).max_frame_size(Some(MAX_SIZE));
    let mut ws = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await?;
    while let Some(msg) = ws.next().await {
        let mut msg = msg?;
        loop {
            if matches!(msg, Message::Text(_) | Message::Binary(_)) {
                ws.feed(msg).await?;
            }
            // Take whatever else is already readable before flushing.
            match ws.next().now_or_never() {
                Some(Some(next)) => msg = next?,
                Some(None) => return ws.flush().await,
                None => break,
            }
        }
        ws.flush().await?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", listener.local_addr()?)?;
        out.flush()?;
    }
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = serve(stream).await;
        });
    }
}
