-- session/begin: start the transaction Session.rolled_back always rolls back (read-only,
-- as every session is); sent by the agent, not by the driver, so it carries the marker.
BEGIN
