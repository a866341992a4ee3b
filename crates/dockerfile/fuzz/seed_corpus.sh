#!/bin/sh
# Seeds corpus/parse_expand with every golden case's Dockerfile text and issue 13's hostile shapes.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/parse_expand
python3 - <<'PY'
import glob, os, re
for path in sorted(glob.glob('../tests/golden/*.txt')):
    base = os.path.basename(path)[:-4]
    for n, case in enumerate(re.split(r'^=== .*$', open(path).read(), flags=re.M)[1:]):
        body = case.split('--- expect')[0].strip('\n')
        body = '\n'.join(l for l in body.split('\n') if not l.startswith('args:'))
        body = body.replace('<TAB>', '\t').replace('<CR>', '\r')
        open(f'corpus/parse_expand/{base}_{n}', 'w').write(body + '\n')
# Issue 13's hostile shapes: nesting past the limit, many stages, a long continued line.
open('corpus/parse_expand/hostile_nested', 'w').write('FROM scratch\nARG X=' + '${U:-' * 10000 + 'x' + '}' * 10000 + '\n')
open('corpus/parse_expand/hostile_stages', 'w').write(''.join(f'FROM s{i-1} AS s{i}\n' if i else 'FROM scratch AS s0\n' for i in range(10000)))
open('corpus/parse_expand/hostile_long_line', 'w').write('FROM scratch\nRUN ' + 'a \\\n' * 50000 + '\n')
PY
