"""The model's processes, one module per ODD submodel (docs/ODD.md §7), in the order a day runs them.

Each module has a public step function over the world state (`sim.world.World`), the
scenario's rules and, where the process is random, its own named random stream; pure helper
functions hold the rule's equations so tests can show their properties directly.

Daily order (ODD §3): `casualties.recover_wounded`, `strategy.step` (salary reviews),
`economy.step`, `tribal_politics.step`,
`recruitment.step`, `deployment.step`, `influence.step`, `conflict.step` (tension, looting,
clashes), `mediation.step`, `spillover.step` (theatres), `insurgency.step`,
`casualties.remember_losses`. `patrons` holds the patron effects several processes read
(supply route, arms, green light, patrons' aims).
"""
