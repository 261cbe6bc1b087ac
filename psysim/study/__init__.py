"""Running a study: ``psysim-paper``, shards, log series and status, and the nginx balancer for several servers."""
