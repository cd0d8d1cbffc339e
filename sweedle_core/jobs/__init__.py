"""The life of a generation job: states, the priority queue, events and the coordinator."""
