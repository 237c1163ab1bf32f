#!/usr/bin/env python3
"""gen-help.py PATHS_MD OUT_H: the exporter's HELP texts, from docs/paths.md.

Each leaf documented there ("#### PATH = VALUES [TAGS]") gives its first
sentence as what the metric means, and whether a guest may write it (the
owner-w tag): such a string is not a free label value (hypfs-exporter(8)).
One source for both, so the exporter says what the documentation says.
"""
import re
import sys


def c_string(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def first_clause(text):
    """Up to the first '.', ':' or ';' ending a clause, outside brackets."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == '(':
            depth += 1
        elif ch == ')':
            depth = max(depth - 1, 0)
        elif ch in '.:;' and depth == 0 and text[i + 1:i + 2] in ('', ' '):
            return text[:i].strip()
    return text.strip()


def main(src, out):
    entries = []
    lines = open(src, encoding='utf-8').read().split('\n')
    head = re.compile(r'^#### (/\S*) = .*?(?:\[([^\]]*)\])?\s*$')
    for i, line in enumerate(lines):
        m = head.match(line)
        if not m:
            continue
        tags = (m.group(2) or '').split(',')
        if 'test' in tags:
            continue
        para = []
        for nxt in lines[i + 1:]:
            if nxt.startswith('#'):
                break
            if not nxt.strip():
                if para:
                    break
                continue
            para.append(nxt.strip())
        text = ' '.join(para).replace('`', '')
        entries.append((m.group(1), first_clause(text), 'owner-w' in tags))
    with open(out, 'w', encoding='utf-8') as f:
        f.write('/* Generated from docs/paths.md by gen-help.py: do not edit. */\n')
        f.write('static const struct path_help {\n'
                '    const char *pattern;    /* <id> for an instance */\n'
                '    const char *help;       /* "" if undocumented */\n'
                '    bool guest_writes;      /* tag owner-w */\n'
                '} path_help[] = {\n')
        for pattern, text, gw in entries:
            f.write('    { %s, %s, %s },\n' % (c_string(pattern), c_string(text),
                                                'true' if gw else 'false'))
        f.write('};\n')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
