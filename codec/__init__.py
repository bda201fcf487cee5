"""The codec server: Temporal's remote codec protocol over paysaga's key ring, so the Web UI and
the `temporal` CLI show decrypted payloads to the people allowed to see them."""
