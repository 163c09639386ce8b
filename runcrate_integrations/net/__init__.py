"""Everything between a request body and the bytes on the wire: the pooled clients
(:mod:`.clients`), the one request loop (:mod:`.transport`) and the rate limit
(:mod:`.ratelimit`)."""
