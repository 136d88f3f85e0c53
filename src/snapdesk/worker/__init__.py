"""snapdesk-worker: a headless consumer of SnapDesk's job queues."""
