//! The test proxy as a program, for the development environment (`scripts/dev`): moto lacks
//! Athena's `BatchGetQueryExecution` and `UpdateWorkGroup`, which lakegate's query monitor and
//! teardown use. Usage: `lakegate-aws-proxy <moto URL> <listen address>`; runs until killed.

use lakegate_testkit::aws_proxy::AwsProxy;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(upstream), Some(listen)) = (args.next(), args.next()) else {
        eprintln!("usage: lakegate-aws-proxy <moto URL> <listen address, like 127.0.0.1:5001>");
        std::process::exit(2);
    };
    let proxy = AwsProxy::start_on(&upstream, &listen).await?;
    eprintln!("lakegate-aws-proxy: {} -> {upstream}", proxy.url());
    std::future::pending::<std::io::Result<()>>().await
}
