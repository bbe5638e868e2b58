// Keeps rfs_proto non-empty until the protocol sources land.
