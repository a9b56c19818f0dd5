"""Demo inventory modelled on the motivating case (docs/README.md, "The motivating case").

Three campuses in one metro area 15–30 km apart. Campus 1 was built fast with mixed generations
(about 200,000 GPUs: H100, H200, GB200 and older A100); campuses 2 and 3 are uniform Blackwell.
The campuses are joined by aging fiber of a few hundred Gbit/s with small transport windows, plus
one modern link. That is why synchronous training across all three runs at the pace of the
slowest hardware and links.

Node rows: an HGX server of 8 GPUs is a node; a GB200 NVL72 rack is one node of 72 GPUs, because
its NVLink domain is the unit that is leased and scheduled (a tray of 4 GPUs is never rented alone).

Idempotent: sites, links and clusters are keyed by slug, nodes by hostname; a second run with the
same scale inserts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.progress import ProgressFn, quiet_progress

from .models import AcceleratorModel, Cluster, Node, Site, SiteLink

SITES = [
    # slug, name, lat, lon, power MW
    ("campus-1", "Campus 1 (Elk Grove)", 41.9990, -87.9950, 320.0),
    ("campus-2", "Campus 2 (Wheaton)", 41.8661, -88.1070, 160.0),
    ("campus-3", "Campus 3 (Burr Ridge)", 41.7489, -87.9184, 140.0),
]
METRO_TIMEZONE = "America/Chicago"


@dataclass(frozen=True)
class ClusterSpec:
    site: str
    slug: str
    name: str
    accelerator: str
    gpus_per_node: int
    nodes: int
    fabric_gbps_per_gpu: float


CLUSTERS = [
    ClusterSpec("campus-1", "c1-h100", "H100 hall A", "h100", 8, 12_500, 400.0),
    ClusterSpec("campus-1", "c1-h200", "H200 hall B", "h200", 8, 6_000, 400.0),
    ClusterSpec("campus-1", "c1-gb200", "GB200 hall C", "gb200", 72, 500, 800.0),
    ClusterSpec("campus-1", "c1-a100", "A100 hall D", "a100", 8, 2_000, 200.0),
    ClusterSpec("campus-2", "c2-gb200", "GB200 hall", "gb200", 72, 1_000, 800.0),
    ClusterSpec("campus-3", "c3-b200", "B200 hall", "b200", 8, 8_000, 400.0),
]

LINKS = [
    # Straight lines are 17, 28 and 20 km; fiber routes run 1.3–1.5× that.
    # a, b, route km, Gbit/s, efficiency, equipment µs, year, loss, window bytes, streams, rtts
    ("campus-1", "campus-2", 26.0, 400.0, 0.85, 25.0, 2009, 1e-5, 4 * 2**20, 4, 1),
    ("campus-1", "campus-3", 41.0, 200.0, 0.80, 30.0, 2007, 5e-5, 2 * 2**20, 4, 1),
    # The one modern link: 16 × 400ZR wavelengths, large windows, pre-posted buffers.
    ("campus-2", "campus-3", 27.0, 6_400.0, 0.92, 10.0, 2025, 0.0, 256 * 2**20, 64, 0),
]

BATCH = 5_000


def scaled(count: int, scale: float) -> int:
    """`count` × `scale`, at least one."""
    return max(1, round(count * scale))


def seed_inventory(*, scale: float = 1.0, progress: ProgressFn = quiet_progress) -> dict[str, int]:
    """Create the demo campuses, links, clusters and nodes; returns rows created per kind."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    created = {"sites": 0, "links": 0, "clusters": 0, "nodes": 0}
    sites: dict[str, Site] = {}
    for slug, name, lat, lon, power in SITES:
        sites[slug], new = Site.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "latitude": lat,
                "longitude": lon,
                "timezone": METRO_TIMEZONE,
                "power_mw": power,
            },
        )
        created["sites"] += new
    for a, b, km, gbps, eff, lat_us, year, loss, window, streams, rtts in LINKS:
        first, second = sorted((sites[a], sites[b]), key=lambda s: s.pk)
        _, new = SiteLink.objects.get_or_create(
            site_a=first,
            site_b=second,
            defaults={
                "route_km": km,
                "bandwidth_gbps": gbps,
                "efficiency": eff,
                "equipment_latency_us": lat_us,
                "commissioned_year": year,
                "loss_rate": loss,
                "window_bytes": window,
                "streams": streams,
                "rendezvous_rtts": float(rtts),
            },
        )
        created["links"] += new
    accelerators = {a.slug: a for a in AcceleratorModel.objects.all()}
    wanted = [(spec, scaled(spec.nodes, scale)) for spec in CLUSTERS]
    total_nodes = sum(n for _, n in wanted)
    done = 0
    for spec, count in wanted:
        cluster, new = Cluster.objects.get_or_create(
            slug=spec.slug,
            defaults={
                "site": sites[spec.site],
                "name": spec.name,
                "accelerator": accelerators[spec.accelerator],
                "gpus_per_node": spec.gpus_per_node,
                "fabric_gbps_per_gpu": spec.fabric_gbps_per_gpu,
            },
        )
        created["clusters"] += new
        existing = set(Node.objects.filter(cluster=cluster).values_list("hostname", flat=True))
        missing = [
            Node(cluster=cluster, hostname=hostname)
            for hostname in (f"{spec.slug}-{i:05d}" for i in range(1, count + 1))
            if hostname not in existing
        ]
        for start in range(0, len(missing), BATCH):
            Node.objects.bulk_create(missing[start : start + BATCH])
            done += len(missing[start : start + BATCH])
            progress("nodes", done, total_nodes)
        created["nodes"] += len(missing)
        done += count - len(missing)
        progress("nodes", done, total_nodes)
    return created
