"""How often does bounding the bidders to the k nearest by air miss the fastest by road?

300 random auctions among 100 random vehicles (radius 1,500 m), on the generated city and on
central Bengaluru (docs/decisions.md, "Bounded bidders"). Run: python examples/bidder_bound.py
"""

from __future__ import annotations

import random

from fleetbid.auction.admission import eligible
from fleetbid.core.config import RunConfig
from fleetbid.core.world import World

AUCTIONS, VEHICLES, RADIUS_M = 300, 100, 1500.0


def main() -> None:
    for map_name in (None, "dense"):
        world = World.build(RunConfig(vehicles=VEHICLES, map=map_name))
        nodes = world.roadmap.nodes
        for bound in (8, 10):
            rng = random.Random(1)
            missed, extra_s, auctions = 0, 0.0, 0
            for _ in range(AUCTIONS):
                starts = [(f"v{i}", nodes[rng.randrange(len(nodes))]) for i in range(VEHICLES)]
                pickup = nodes[rng.randrange(len(nodes))]
                cluster = world.clusters.cluster_of_node(pickup)
                every = eligible(world.roadmap, world.clusters, RADIUS_M, cluster, pickup,
                                 starts)
                if not every:
                    continue
                nearest = eligible(world.roadmap, world.clusters, RADIUS_M, cluster, pickup,
                                   starts, bound)
                best = min(world.travel.time_to(n, pickup) for _, n in every)
                best_bounded = min(world.travel.time_to(n, pickup) for _, n in nearest)
                auctions += 1
                if best_bounded > best + 1e-9:
                    missed += 1
                    extra_s += best_bounded - best
            print(f"{map_name or 'city':6} bound {bound:2}: fastest missed in {missed} of "
                  f"{auctions} auctions ({missed / auctions:.1%}), "
                  f"{extra_s / max(1, missed):.1f} s longer when missed")


if __name__ == "__main__":
    main()
