// N-API glue: converts arguments, runs the C core off the main thread, and
// settles promises. Arguments were validated in TypeScript (native.ts); the
// checks here only keep a wrong call from crashing the process.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <sys/mount.h>
#include <sys/socket.h>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "napi_common.h"

extern "C" {
#include "netns.h"
#include "oci_config.h"
#include "shim_spawn.h"
}

namespace {

using namespace grove;

// Runs `work` on the libuv threadpool (short, bounded jobs only) and settles a promise.
class Task : public Napi::AsyncWorker {
public:
  using Work = std::function<int(grove_error_t *)>;
  using Result = std::function<Napi::Value(Napi::Env)>;

  static Napi::Value Run(Napi::Env env, Work work, Result result) {
    auto *task = new Task(env, std::move(work), std::move(result));
    Napi::Promise promise = task->deferred_.Promise();
    task->Queue();
    return promise;
  }

protected:
  void Execute() override {
    std::memset(&err_, 0, sizeof(err_));
    failed_ = work_(&err_) < 0;
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(ToJsError(env, err_).Value());
      return;
    }
    try {
      deferred_.Resolve(result_(env));
    } catch (const Napi::Error &e) {
      deferred_.Reject(e.Value());
    }
  }

private:
  Task(Napi::Env env, Work work, Result result)
      : Napi::AsyncWorker(env, "grove-native"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), result_(std::move(result)) {}

  Napi::Promise::Deferred deferred_;
  Work work_;
  Result result_;
  grove_error_t err_{};
  bool failed_ = false;
};

Napi::Value DetectCgroupMode(const Napi::CallbackInfo &info) {
  std::string root = StringArg(info, 0, "root");
  grove_error_t err{};
  grove_cgroup_mode_t mode;
  if (grove_cgroup_detect(root.c_str(), &mode, &err) < 0)
    throw ToJsError(info.Env(), err);
  return Napi::String::New(info.Env(), mode == GROVE_CGROUP_V2 ? "v2" : "v1");
}

// Attaches the v2 device program to an existing cgroup2 directory (sync, a few
// syscalls); optional extra rules [{ allow, rule: "c 1:3 rwm" }] before the allow list.
Napi::Value AttachDeviceProgram(const Napi::CallbackInfo &info) {
  std::string dir = StringArg(info, 0, "dir");
  std::vector<std::string> texts;
  std::vector<grove_device_rule_t> rules;
  if (info.Length() > 1 && info[1].IsArray()) {
    Napi::Array a = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsObject())
        throw Napi::TypeError::New(info.Env(), "rules[" + std::to_string(i) + "] must be an object");
      Napi::Object o = v.As<Napi::Object>();
      Napi::Value rule = o.Get("rule");
      if (!rule.IsString())
        throw Napi::TypeError::New(info.Env(), "rules[" + std::to_string(i) + "].rule must be a string");
      texts.push_back(rule.As<Napi::String>().Utf8Value());
      rules.push_back(grove_device_rule_t{o.Get("allow").ToBoolean().Value() ? 1 : 0, nullptr});
    }
    for (size_t i = 0; i < rules.size(); i++)
      rules[i].rule = texts[i].c_str();
  }
  grove_error_t err{};
  if (grove_cgroup_attach_device_program(dir.c_str(), rules.data(), rules.size(), &err) < 0)
    throw ToJsError(info.Env(), err);
  return info.Env().Undefined();
}

grove_resources_t ResourcesArg(const Napi::CallbackInfo &info, size_t i) {
  if (info.Length() <= i || !info[i].IsObject())
    throw Napi::TypeError::New(info.Env(), "resources must be an object");
  Napi::Object o = info[i].As<Napi::Object>();
  return grove_resources_t{IntegerProp(o, "cpuMillis"), IntegerProp(o, "memoryBytes"), IntegerProp(o, "pids"), nullptr, 0, 0, 0, 0};
}

Napi::Value SetupCgroup(const Napi::CallbackInfo &info) {
  auto ref = std::make_shared<CgroupRef>(CgroupArgs(info, true));
  if (!ref->hasId)
    throw Napi::TypeError::New(info.Env(), "id must be a string");
  grove_resources_t res = ResourcesArg(info, 4);
  return Task::Run(
      info.Env(),
      [ref, res](grove_error_t *err) {
        grove_cgroup_t cg = ref->View();
        return ref->Ops()->setup(&cg, &res, err);
      },
      [](Napi::Env env) { return env.Undefined(); });
}

Napi::Value RemoveCgroup(const Napi::CallbackInfo &info) {
  auto ref = std::make_shared<CgroupRef>(CgroupArgs(info, true));
  return Task::Run(
      info.Env(),
      [ref](grove_error_t *err) {
        grove_cgroup_t cg = ref->View();
        return ref->Ops()->remove(&cg, err);
      },
      [](Napi::Env env) { return env.Undefined(); });
}

Napi::Value KillCgroup(const Napi::CallbackInfo &info) {
  auto ref = std::make_shared<CgroupRef>(CgroupArgs(info, true));
  if (!ref->hasId)
    throw Napi::TypeError::New(info.Env(), "id must be a string");
  if (info.Length() < 5 || !info[4].IsNumber())
    throw Napi::TypeError::New(info.Env(), "signal must be a number");
  int sig = info[4].As<Napi::Number>().Int32Value();
  auto signalled = std::make_shared<int>(0);
  return Task::Run(
      info.Env(),
      [ref, sig, signalled](grove_error_t *err) {
        grove_cgroup_t cg = ref->View();
        return ref->Ops()->kill(&cg, sig, signalled.get(), err);
      },
      [signalled](Napi::Env env) { return Napi::Number::New(env, *signalled); });
}

Napi::Value ListCgroups(const Napi::CallbackInfo &info) {
  auto ref = std::make_shared<CgroupRef>(CgroupArgs(info, false));
  auto ids = std::make_shared<std::vector<std::string>>();
  return Task::Run(
      info.Env(),
      [ref, ids](grove_error_t *err) {
        grove_cgroup_t cg = ref->View();
        char **list = nullptr;
        size_t count = 0;
        if (ref->Ops()->list(&cg, &list, &count, err) < 0)
          return -1;
        for (size_t i = 0; i < count; i++)
          ids->push_back(list[i]);
        grove_string_list_free(list, count);
        return 0;
      },
      [ids](Napi::Env env) {
        Napi::Array a = Napi::Array::New(env, ids->size());
        for (size_t i = 0; i < ids->size(); i++)
          a.Set(i, Napi::String::New(env, (*ids)[i]));
        return a;
      });
}

Napi::Value OomKills(const Napi::CallbackInfo &info) {
  auto ref = std::make_shared<CgroupRef>(CgroupArgs(info, true));
  auto count = std::make_shared<int64_t>(0);
  return Task::Run(
      info.Env(),
      [ref, count](grove_error_t *err) {
        grove_cgroup_t cg = ref->View();
        return ref->Ops()->oom_kills(&cg, count.get(), err);
      },
      [count](Napi::Env env) { return Napi::Number::New(env, static_cast<double>(*count)); });
}

class ShimTask : public Napi::AsyncWorker {
public:
  explicit ShimTask(Napi::Env env)
      : Napi::AsyncWorker(env, "grove-shim-start"), deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  std::string shimPath, id, config;

protected:
  void Execute() override {
    failed_ = grove_shim_spawn(shimPath.c_str(), id.c_str(), config.data(), config.size(), &report_, &err_) < 0;
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred.Reject(ToJsError(env, err_).Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("pid", Napi::Number::New(env, report_.pid));
    o.Set("shimPid", Napi::Number::New(env, report_.shim_pid));
    deferred.Resolve(o);
  }

private:
  grove_error_t err_{};
  grove_shim_report report_{};
  bool failed_ = false;
};

// startShim(shimPath, id, [key, value, key, value, ...]) -> Promise<{pid, shimPid}>
Napi::Value StartShim(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string shimPath = StringArg(info, 0, "shimPath");
  std::string id = StringArg(info, 1, "id");
  if (info.Length() < 3)
    throw Napi::TypeError::New(env, "startShim(shimPath, id, config)");
  std::vector<std::string> pairs = StringArray(env, info[2], "config");
  if (pairs.size() % 2 != 0)
    throw Napi::TypeError::New(env, "config must hold key/value pairs");
  auto *task = new ShimTask(env);
  task->shimPath = shimPath;
  task->id = id;
  for (auto &s : pairs) {
    if (s.find('\0') != std::string::npos)
      throw Napi::TypeError::New(env, "config strings must not contain NUL");
    task->config.append(s);
    task->config.push_back('\0');
  }
  Napi::Promise promise = task->deferred.Promise();
  task->Queue();
  return promise;
}

Napi::Array Strings(Napi::Env env, char *const *list) {
  Napi::Array a = Napi::Array::New(env);
  for (uint32_t i = 0; list[i] != nullptr; i++)
    a.Set(i, Napi::String::New(env, list[i]));
  return a;
}

Napi::Array IdMaps(Napi::Env env, const grove_id_map_t *maps, size_t n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) {
    Napi::Object m = Napi::Object::New(env);
    m.Set("containerId", Napi::Number::New(env, maps[i].container_id));
    m.Set("hostId", Napi::Number::New(env, maps[i].host_id));
    m.Set("size", Napi::Number::New(env, maps[i].size));
    a.Set(i, m);
  }
  return a;
}

// The process part of a bundle read by the OCI front end (OciProcess in native-binding.ts).
Napi::Object OciProcess(Napi::Env env, const grove_oci_bundle_t &b) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("args", Strings(env, b.cc.argv));
  o.Set("env", Strings(env, b.cc.envp));
  o.Set("cwd", Napi::String::New(env, b.cc.cwd));
  o.Set("uid", Napi::Number::New(env, b.cc.uid));
  o.Set("gid", Napi::Number::New(env, b.cc.gid));
  Napi::Array groups = Napi::Array::New(env, b.ngroups);
  for (size_t i = 0; i < b.ngroups; i++)
    groups.Set(i, Napi::Number::New(env, b.groups[i]));
  o.Set("additionalGids", groups);
  o.Set("caps", b.cc.caps_set ? Napi::Value(Napi::String::New(env, std::to_string(b.cc.caps))) : env.Null());
  Napi::Object given = Napi::Object::New(env);
  const char *const given_names[] = {"effective", "permitted", "inheritable"};
  for (size_t i = 0; i < 3; i++)
    given.Set(given_names[i], b.cap_given[i] >= 0 ? Napi::Value(Napi::String::New(env, std::to_string(b.cap_given[i])))
                                                  : env.Null());
  o.Set("capsGiven", given);
  o.Set("seccomp", Napi::String::New(env, b.cc.seccomp_unconfined ? "unconfined" : "default"));
  Napi::Array rlimits = Napi::Array::New(env, b.nrlimits);
  for (size_t i = 0; i < b.nrlimits; i++) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("resource", Napi::Number::New(env, b.rlimits[i].resource));
    r.Set("soft", Napi::Number::New(env, static_cast<double>(b.rlimits[i].soft)));
    r.Set("hard", Napi::Number::New(env, static_cast<double>(b.rlimits[i].hard)));
    rlimits.Set(i, r);
  }
  o.Set("rlimits", rlimits);
  return o;
}

Napi::Object OciResources(Napi::Env env, const grove_oci_bundle_t &b) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpuMillis", Napi::Number::New(env, static_cast<double>(b.res.cpu_millis)));
  o.Set("cpuQuotaUs", Napi::Number::New(env, static_cast<double>(b.res.cpu_quota_us)));
  o.Set("cpuPeriodUs", Napi::Number::New(env, static_cast<double>(b.res.cpu_period_us)));
  o.Set("cpuShares", Napi::Number::New(env, static_cast<double>(b.cpu_shares)));
  o.Set("memoryBytes", Napi::Number::New(env, static_cast<double>(b.res.memory_bytes)));
  o.Set("pids", Napi::Number::New(env, static_cast<double>(b.res.pids)));
  Napi::Array devices = Napi::Array::New(env, b.res.ndevices);
  for (size_t i = 0; i < b.res.ndevices; i++) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("allow", Napi::Boolean::New(env, b.dev_rules[i].allow != 0));
    d.Set("rule", Napi::String::New(env, b.dev_rules[i].rule));
    devices.Set(i, d);
  }
  o.Set("devices", devices);
  return o;
}

// readOciBundle(bundle, id): <bundle>/config.json through Grove's one OCI front
// end (oci_config.c), as grove-runtime reads it; throws its refusal. Sync: one
// small file, for the TypeScript command line.
Napi::Value ReadOciBundle(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string bundle = StringArg(info, 0, "bundle"), id = StringArg(info, 1, "id");
  auto b = std::make_unique<grove_oci_bundle_t>();
  grove_error_t err{};
  if (grove_oci_bundle_load(b.get(), bundle.c_str(), id.c_str(), &err) < 0) {
    grove_oci_bundle_free(b.get());
    throw ToJsError(env, err);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("rootfs", Napi::String::New(env, b->rootfs));
  o.Set("readonlyRootfs", Napi::Boolean::New(env, b->cc.readonly_rootfs != 0));
  o.Set("hostname", Napi::String::New(env, b->hostname));
  o.Set("process", OciProcess(env, *b));
  // The bind mounts (other types are staticOnly); Grove's own /proc, /dev and
  // /sys are made by the runtime core before them.
  Napi::Array mounts = Napi::Array::New(env);
  for (size_t i = 0, n = 0; i < b->cc.nmounts; i++) {
    if (b->mounts[i].own || b->mounts[i].fstype != nullptr) // a cgroup mount: not made by this path
      continue;
    Napi::Object m = Napi::Object::New(env);
    m.Set("source", Napi::String::New(env, b->mounts[i].source));
    m.Set("destination", Napi::String::New(env, b->mounts[i].destination));
    m.Set("readonly", Napi::Boolean::New(env, b->mounts[i].readonly != 0));
    m.Set("recursive", Napi::Boolean::New(env, (b->mounts[i].flags & MS_REC) != 0));
    mounts.Set(n++, m);
  }
  o.Set("mounts", mounts);
  o.Set("netnsPath", b->netns != nullptr ? Napi::Value(Napi::String::New(env, b->netns)) : env.Null());
  o.Set("hostCgroupNamespace", Napi::Boolean::New(env, b->cc.host_cgroupns != 0));
  if (b->userns) {
    Napi::Object u = Napi::Object::New(env);
    u.Set("uidMap", IdMaps(env, b->uid_maps, b->cc.nuid_maps));
    u.Set("gidMap", IdMaps(env, b->gid_maps, b->cc.ngid_maps));
    o.Set("userNamespace", u);
  } else {
    o.Set("userNamespace", env.Null());
  }
  o.Set("resources", OciResources(env, *b));
  o.Set("annotations", Napi::String::New(env, b->annotations));
  Napi::Array static_only = Napi::Array::New(env, b->nstatic_only);
  for (size_t i = 0; i < b->nstatic_only; i++)
    static_only.Set(i, Napi::String::New(env, b->static_only[i]));
  o.Set("staticOnly", static_only);
  grove_oci_bundle_free(b.get());
  return o;
}

// netnsSocket(netnsPath, family, type): a new unconnected socket (fd) made
// inside that network namespace (netns.c). family 4 or 6, type "tcp" or
// "udp". Sync: a thread made and joined, two syscalls.
Napi::Value NetnsSocket(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = StringArg(info, 0, "netnsPath");
  if (info.Length() < 3 || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "family must be 4 or 6");
  int family = info[1].As<Napi::Number>().Int32Value();
  std::string type = StringArg(info, 2, "type");
  if ((family != 4 && family != 6) || (type != "tcp" && type != "udp"))
    throw Napi::TypeError::New(env, "family must be 4 or 6 and type \"tcp\" or \"udp\"");
  grove_error_t err{};
  int fd = grove_netns_socket(path.c_str(), family == 4 ? AF_INET : AF_INET6,
                              type == "tcp" ? SOCK_STREAM : SOCK_DGRAM, &err);
  if (fd < 0)
    throw ToJsError(env, err);
  return Napi::Number::New(env, fd);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("detectCgroupMode", Napi::Function::New(env, DetectCgroupMode));
  exports.Set("setupCgroup", Napi::Function::New(env, SetupCgroup));
  exports.Set("attachDeviceProgram", Napi::Function::New(env, AttachDeviceProgram));
  exports.Set("removeCgroup", Napi::Function::New(env, RemoveCgroup));
  exports.Set("killCgroup", Napi::Function::New(env, KillCgroup));
  exports.Set("listCgroups", Napi::Function::New(env, ListCgroups));
  exports.Set("oomKills", Napi::Function::New(env, OomKills));
  exports.Set("startShim", Napi::Function::New(env, StartShim));
  exports.Set("readOciBundle", Napi::Function::New(env, ReadOciBundle));
  exports.Set("netnsSocket", Napi::Function::New(env, NetnsSocket));
  return exports;
}

} // namespace

NODE_API_MODULE(grove_native, Init)
