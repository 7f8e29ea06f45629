"""Read rendered cloud-init files back the way a node does.

Usage: readback.py DIR. DIR holds N.user-data, N.meta-data and
N.network-config for cases N. YAML is read with PyYAML's SafeLoader, the
YAML 1.1 loader cloud-init builds on; write_files contents are decoded;
every *.env file among them is sourced by bash in a subshell of one bash
process. Prints one JSON object: case -> what was read back.
"""
import base64
import gzip
import json
import os
import subprocess
import sys

import yaml

ENV_SCRIPT = r'''
for f in "$@"; do
  (
    # Only the file's own variables: set -a would not help, so diff names.
    before=" $(compgen -v | tr '\n' ' ') "
    if ! source "$f" >/dev/null 2>&1; then printf 'ERR\0'; fi
    printf 'FILE\0%s\0' "$f"
    for v in $(compgen -v); do
      case "$before" in *" $v "*) continue ;; esac
      [ "$v" = before ] && continue
      printf '%s\0%s\0' "$v" "${!v}"
    done
    printf 'END\0'
  )
done
'''


def load(path):
    with open(path, 'rb') as f:
        return yaml.load(f.read().decode('utf-8'), Loader=yaml.SafeLoader)


def main():
    d = sys.argv[1]
    cases = sorted({n.split('.')[0] for n in os.listdir(d) if n.endswith('.user-data')})
    out, envs = {}, []
    for c in cases:
        r = {}
        try:
            ud = load(os.path.join(d, c + '.user-data'))
            r['keys'] = sorted(ud)
            r['hostname'] = ud.get('hostname')
            r['final_message'] = ud.get('final_message')
            r['bootcmd'] = ud.get('bootcmd')
            r['groups'] = ud.get('groups')
            r['users'] = ud.get('users')
            files = []
            for i, wf in enumerate(ud.get('write_files') or []):
                content = wf.get('content', '')
                if wf.get('encoding') == 'gz+b64':
                    content = gzip.decompress(base64.b64decode(content)).decode('utf-8')
                files.append({'path': wf['path'], 'permissions': wf.get('permissions'), 'content': content})
                if wf['path'].endswith('.env'):
                    p = os.path.join(d, '%s.%d.env' % (c, i))
                    with open(p, 'wb') as f:
                        f.write(content.encode('utf-8'))
                    envs.append((c, wf['path'], p))
            r['write_files'] = files
            md = load(os.path.join(d, c + '.meta-data'))
            r['meta_keys'] = sorted(md)
            r['local_hostname'] = md.get('local-hostname')
            nc = load(os.path.join(d, c + '.network-config'))
            r['net_keys'] = sorted(nc)
            r['ethernets'] = nc.get('ethernets')
        except Exception as e:  # the test reports it with the case
            r['error'] = '%s: %s' % (type(e).__name__, e)
        r['env'] = {}
        out[c] = r
    if envs:
        by_path = {p: (c, name) for c, name, p in envs}
        res = subprocess.run(['bash', '--noprofile', '--norc', '-c', ENV_SCRIPT, '_'] + [p for _, _, p in envs],
                             stdout=subprocess.PIPE, check=True, env={'PATH': os.environ.get('PATH', '/usr/bin:/bin')})
        fields = res.stdout.split(b'\0')
        i, cur, err = 0, None, False
        while i < len(fields) - 1:
            f = fields[i].decode('utf-8', 'surrogateescape')
            if f == 'ERR':
                err, i = True, i + 1
            elif f == 'FILE':
                c, name = by_path[fields[i + 1].decode()]
                cur = out[c]['env'].setdefault(name, {})
                if err:
                    cur['!error'] = 'source failed'
                err, i = False, i + 2
            elif f == 'END':
                cur, i = None, i + 1
            else:
                cur[f] = fields[i + 1].decode('utf-8', 'surrogateescape')
                i += 2
    json.dump(out, sys.stdout)


main()
