"""Talking to Temporal from outside a workflow: starting the sagas (`start`), asking about them
(`ask`), the payload codec and the converter every client and worker uses (`codec`,
`converter`), and the codec server beside its codec (`codec_server`). Workflow code lives in
`workflows/` and never imports this package."""
