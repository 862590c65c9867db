"""The fanout worker's process: the consumer loop, its probes and the consumer-lag gauge."""
