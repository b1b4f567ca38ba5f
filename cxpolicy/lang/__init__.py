"""The language front end: .cxp text → checked policy.

Stages, in order: `prepass` (finds CEL conditions and comments), `syntax` (Lark parse → `ast`),
`vocabulary` (dimensions and attributes), `checker` (names, did-you-mean, every problem as a
`source.Diagnostic`). Nothing here evaluates a request.
"""
