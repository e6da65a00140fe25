"""The simulated deployment as several replicas (``chatload sim --replicas``): the processes,
one replica's worker side, another replica's chat as streams here see it, and the relay."""
