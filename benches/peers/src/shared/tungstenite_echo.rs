//! The echo loop shared by `tokio-tungstenite-echo` and `tokio-tungstenite-tls-echo` (the same
//! code over a TCP stream or a tokio-rustls stream), and the `listening on` line.

use std::io::Write;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const MAX_SIZE: usize = 64 << 20;

/// Upgrades `stream` and echoes every text and binary message until the peer closes.
pub async fn serve<S>(stream: S) -> Result<(), tokio_tungstenite::tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
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

/// Prints the one `listening on HOST:PORT` line, flushed.
pub fn announce(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()
}
