//! Making sure this node is a Swarm manager, initializing a single-node swarm when it is in none.
//! Join tokens are never read, so they cannot be written or printed.

use std::net::Ipv4Addr;

use bollard::Docker;
use bollard::models::{LocalNodeState, SwarmInitRequest};

use crate::engine::EngineContext;
use crate::error::{DeployError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmOutcome {
    AlreadyManager,
    Initialized { advertise_addr: String },
}

pub async fn ensure_manager(docker: &Docker, advertise: Option<&str>) -> Result<SwarmOutcome> {
    let info = docker
        .info()
        .await
        .engine(|| "reading engine info".into())?;
    let swarm = info.swarm.unwrap_or_default();
    let not_manager = |state: &str| DeployError::Invalid {
        stack: String::new(),
        message: format!(
            "this node's swarm state is `{state}`; run the deployer on a swarm manager"
        ),
    };
    match swarm.local_node_state.unwrap_or(LocalNodeState::EMPTY) {
        LocalNodeState::ACTIVE if swarm.control_available == Some(true) => {
            Ok(SwarmOutcome::AlreadyManager)
        }
        LocalNodeState::ACTIVE => Err(not_manager("worker")),
        LocalNodeState::INACTIVE | LocalNodeState::EMPTY => {
            let advertise_addr = match advertise {
                Some(a) => a.to_string(),
                None => detect_advertise_addr()?.to_string(),
            };
            docker
                .init_swarm(SwarmInitRequest {
                    listen_addr: Some("0.0.0.0:2377".into()),
                    advertise_addr: Some(advertise_addr.clone()),
                    ..Default::default()
                })
                .await
                .engine(|| format!("initializing a swarm advertising {advertise_addr}"))?;
            Ok(SwarmOutcome::Initialized { advertise_addr })
        }
        other => Err(not_manager(&format!("{other:?}").to_ascii_lowercase())),
    }
}

/// The IPv4 address of the interface that carries the default route (what `docker swarm init`
/// would pick), falling back to the first non-loopback address outside Docker's own bridges.
pub fn detect_advertise_addr() -> Result<Ipv4Addr> {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let default_iface = default_route_interface(&routes);
    let addrs = nix::ifaddrs::getifaddrs()
        .map_err(|e| DeployError::io("listing network interfaces", e.into()))?;
    let candidates: Vec<(String, Ipv4Addr)> = addrs
        .filter_map(|ifa| {
            let ip = ifa.address?.as_sockaddr_in()?.ip();
            Some((ifa.interface_name, ip))
        })
        .filter(|(_, ip)| !ip.is_loopback())
        .collect();
    candidates
        .iter()
        .find(|(name, _)| Some(name.as_str()) == default_iface.as_deref())
        .or_else(|| {
            candidates.iter().find(|(name, _)| {
                !name.starts_with("docker") && !name.starts_with("br-") && !name.starts_with("veth")
            })
        })
        .map(|(_, ip)| *ip)
        .ok_or_else(|| {
            DeployError::Swarm(
                "no IPv4 address to advertise the swarm on; pass --advertise-addr".into(),
            )
        })
}

fn default_route_interface(proc_net_route: &str) -> Option<String> {
    proc_net_route.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.len() > 2 && cols[1] == "00000000").then(|| cols[0].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_interface_is_read_from_proc_net_route() {
        let table = "Iface\tDestination\tGateway\tFlags\n\
                     docker0\t000011AC\t00000000\t0001\n\
                     eth0\t00000000\t010200C0\t0003\n";
        assert_eq!(default_route_interface(table).as_deref(), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }
}
