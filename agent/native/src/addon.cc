// N-API glue: converts arguments, runs the C core off the main thread, and
// settles promises. Arguments were validated in TypeScript (native.ts); the
// checks here only keep a wrong call from crashing the process.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

extern "C" {
#include "cgroup.h"
#include "container.h"
#include "error.h"
#include "shim_spawn.h"
}

namespace {

const char *ErrnoName(int errnum) {
  switch (errnum) {
  case ENOENT: return "ENOENT";
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case EBUSY: return "EBUSY";
  case EEXIST: return "EEXIST";
  case EINVAL: return "EINVAL";
  case ENOTDIR: return "ENOTDIR";
  case ELOOP: return "ELOOP";
  case ENOEXEC: return "ENOEXEC";
  case ENOMEM: return "ENOMEM";
  case EAGAIN: return "EAGAIN";
  case ESRCH: return "ESRCH";
  default: return "EUNKNOWN";
  }
}

Napi::Error ToJsError(Napi::Env env, const grove_error_t &err) {
  Napi::Error e = Napi::Error::New(env, err.msg);
  e.Set("errno", Napi::Number::New(env, err.errnum));
  e.Set("code", Napi::String::New(env, err.errnum != 0 ? ErrnoName(err.errnum) : "EGROVE"));
  return e;
}

std::string StringArg(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

int64_t IntegerProp(const Napi::Object &o, const char *name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber())
    throw Napi::TypeError::New(o.Env(), std::string(name) + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

std::vector<std::string> StringArray(Napi::Env env, Napi::Value v, const char *name) {
  if (!v.IsArray())
    throw Napi::TypeError::New(env, std::string(name) + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsString())
      throw Napi::TypeError::New(env, std::string(name) + " must be an array of strings");
    out.push_back(e.As<Napi::String>().Utf8Value());
  }
  return out;
}

// Owns the strings a grove_cgroup_t points at.
struct CgroupRef {
  grove_cgroup_mode_t mode;
  std::string root, parent, id;
  bool hasId;
  grove_cgroup_t View() const {
    return grove_cgroup_t{mode, root.c_str(), parent.c_str(), hasId ? id.c_str() : nullptr};
  }
  const grove_cgroup_ops *Ops() const { return grove_cgroup_ops_for(mode); }
};

grove_cgroup_mode_t ModeArg(const Napi::CallbackInfo &info, size_t i) {
  std::string m = StringArg(info, i, "mode");
  if (m == "v1") return GROVE_CGROUP_V1;
  if (m == "v2") return GROVE_CGROUP_V2;
  throw Napi::TypeError::New(info.Env(), "mode must be \"v1\" or \"v2\"");
}

// (mode, root, parent[, id]) from the first arguments.
CgroupRef CgroupArgs(const Napi::CallbackInfo &info, bool withId) {
  CgroupRef ref{ModeArg(info, 0), StringArg(info, 1, "root"), StringArg(info, 2, "parent"), "", false};
  if (withId && info.Length() > 3 && info[3].IsString()) {
    ref.id = info[3].As<Napi::String>().Utf8Value();
    ref.hasId = true;
  }
  return ref;
}

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
  return grove_resources_t{IntegerProp(o, "cpuMillis"), IntegerProp(o, "memoryBytes"), IntegerProp(o, "pids"), nullptr, 0, 0, 0};
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

struct ExitReport {
  grove_exit_t exit;
  grove_error_t err;
  bool failed;
};

// One thread per container, parked in waitpid(pid): a blocked libuv pool
// thread per running container would starve fs and dns work.
void WaitForExit(pid_t pid, std::shared_ptr<CgroupRef> ref, Napi::ThreadSafeFunction onExit) {
  auto *report = new ExitReport{};
  grove_cgroup_t cg = ref->View();
  report->failed = grove_container_wait(pid, &cg, &report->exit, &report->err) < 0;
  napi_status st = onExit.BlockingCall(report, [](Napi::Env env, Napi::Function cb, ExitReport *r) {
    Napi::Object o = Napi::Object::New(env);
    if (r->failed) {
      o.Set("error", Napi::String::New(env, r->err.msg));
      o.Set("exitCode", Napi::Number::New(env, -1));
      o.Set("signal", Napi::Number::New(env, 0));
      o.Set("oomKilled", Napi::Boolean::New(env, false));
    } else {
      o.Set("exitCode", Napi::Number::New(env, r->exit.exit_code));
      o.Set("signal", Napi::Number::New(env, r->exit.signal));
      o.Set("oomKilled", Napi::Boolean::New(env, r->exit.oom_killed != 0));
    }
    delete r;
    cb.Call({o});
  });
  if (st != napi_ok)
    delete report;
  onExit.Release();
}

class StartTask : public Napi::AsyncWorker {
public:
  StartTask(Napi::Env env, Napi::ThreadSafeFunction onExit)
      : Napi::AsyncWorker(env, "grove-start"), deferred(Napi::Promise::Deferred::New(env)), onExit(onExit) {}

  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction onExit;
  std::shared_ptr<CgroupRef> cgroup;
  std::string rootfs, cwd, hostname, logPath, netnsPath;
  std::vector<std::string> argv, env;
  struct Mount {
    std::string source, destination;
    bool readonly;
  };
  std::vector<Mount> mounts;

protected:
  void Execute() override {
    std::vector<char *> argvp, envp;
    for (auto &s : argv) argvp.push_back(const_cast<char *>(s.c_str()));
    argvp.push_back(nullptr);
    for (auto &s : env) envp.push_back(const_cast<char *>(s.c_str()));
    envp.push_back(nullptr);
    grove_cgroup_t cg = cgroup->View();
    grove_container_config_t cfg;
    std::memset(&cfg, 0, sizeof(cfg));
    cfg.rootfs = rootfs.c_str();
    cfg.argv = argvp.data();
    cfg.envp = envp.data();
    cfg.cwd = cwd.c_str();
    cfg.hostname = hostname.c_str();
    cfg.log_path = logPath.c_str();
    cfg.cgroup = &cg;
    cfg.stdio_fd = -1;
    if (!netnsPath.empty())
      cfg.netns_path = netnsPath.c_str();
    std::vector<grove_mount_t> mountv;
    for (auto &m : mounts) mountv.push_back(grove_mount_t{m.source.c_str(), m.destination.c_str(), m.readonly ? 1 : 0});
    cfg.mounts = mountv.data();
    cfg.nmounts = mountv.size();
    std::memset(&err_, 0, sizeof(err_));
    failed_ = grove_container_start(&cfg, &container_, &err_) < 0;
    if (!failed_) {
      // The waiter owns the thread-safe function's reference from here on.
      std::thread(WaitForExit, container_.pid, cgroup, onExit).detach();
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      onExit.Release();
      deferred.Reject(ToJsError(env, err_).Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("pid", Napi::Number::New(env, container_.pid));
    o.Set("pidfd", Napi::Number::New(env, container_.pidfd));
    deferred.Resolve(o);
  }

private:
  grove_error_t err_{};
  grove_container_t container_{};
  bool failed_ = false;
};

// start({rootfs, argv, env, cwd, hostname, logPath, cgroupMode, cgroupRoot, cgroupParent, id}, onExit)
Napi::Value Start(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "start(options, onExit)");
  Napi::Object o = info[0].As<Napi::Object>();
  auto str = [&](const char *name) {
    Napi::Value v = o.Get(name);
    if (!v.IsString())
      throw Napi::TypeError::New(env, std::string(name) + " must be a string");
    return v.As<Napi::String>().Utf8Value();
  };
  std::string mode = str("cgroupMode");
  if (mode != "v1" && mode != "v2")
    throw Napi::TypeError::New(env, "cgroupMode must be \"v1\" or \"v2\"");
  auto cgroup = std::make_shared<CgroupRef>(CgroupRef{mode == "v2" ? GROVE_CGROUP_V2 : GROVE_CGROUP_V1,
                                                      str("cgroupRoot"), str("cgroupParent"), str("id"), true});
  std::vector<std::string> argv = StringArray(env, o.Get("argv"), "argv");
  if (argv.empty())
    throw Napi::TypeError::New(env, "argv must not be empty");
  std::vector<std::string> envv = StringArray(env, o.Get("env"), "env");
  std::string rootfs = str("rootfs"), cwd = str("cwd"), hostname = str("hostname"), logPath = str("logPath");
  std::vector<StartTask::Mount> mounts;
  {
    Napi::Value mv = o.Get("mounts");
    if (!mv.IsUndefined() && !mv.IsNull()) {
      if (!mv.IsArray())
        throw Napi::TypeError::New(env, "mounts must be an array");
      Napi::Array arr = mv.As<Napi::Array>();
      if (arr.Length() > GROVE_MAX_MOUNTS)
        throw Napi::TypeError::New(env, "at most " + std::to_string(GROVE_MAX_MOUNTS) + " mounts");
      for (uint32_t i = 0; i < arr.Length(); i++) {
        Napi::Value e = arr.Get(i);
        if (!e.IsObject())
          throw Napi::TypeError::New(env, "mounts[" + std::to_string(i) + "] must be an object");
        Napi::Object m = e.As<Napi::Object>();
        Napi::Value src = m.Get("source"), dst = m.Get("destination");
        if (!src.IsString() || !dst.IsString())
          throw Napi::TypeError::New(env, "mounts[" + std::to_string(i) + "]: source and destination must be strings");
        mounts.push_back(StartTask::Mount{src.As<Napi::String>().Utf8Value(), dst.As<Napi::String>().Utf8Value(),
                                          m.Get("readonly").ToBoolean().Value()});
      }
    }
  }

  auto tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "grove-waiter", 0, 1);
  auto *task = new StartTask(env, tsfn);
  task->cgroup = cgroup;
  task->rootfs = rootfs;
  task->cwd = cwd;
  task->hostname = hostname;
  task->logPath = logPath;
  {
    Napi::Value ns = o.Get("netnsPath");
    if (!ns.IsUndefined() && !ns.IsNull()) {
      if (!ns.IsString())
        throw Napi::TypeError::New(env, "netnsPath must be a string");
      task->netnsPath = ns.As<Napi::String>().Utf8Value();
    }
  }
  task->argv = std::move(argv);
  task->env = std::move(envv);
  task->mounts = std::move(mounts);
  Napi::Promise promise = task->deferred.Promise();
  task->Queue();
  return promise;
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

Napi::Value PidfdSignal(const Napi::CallbackInfo &info) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
    throw Napi::TypeError::New(info.Env(), "pidfdSignal(pidfd, signal)");
  grove_error_t err{};
  int r = grove_pidfd_signal(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), &err);
  if (r < 0)
    throw ToJsError(info.Env(), err);
  return Napi::Boolean::New(info.Env(), r == 1);
}

Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  if (info.Length() < 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "closeFd(fd)");
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("detectCgroupMode", Napi::Function::New(env, DetectCgroupMode));
  exports.Set("setupCgroup", Napi::Function::New(env, SetupCgroup));
  exports.Set("attachDeviceProgram", Napi::Function::New(env, AttachDeviceProgram));
  exports.Set("removeCgroup", Napi::Function::New(env, RemoveCgroup));
  exports.Set("killCgroup", Napi::Function::New(env, KillCgroup));
  exports.Set("listCgroups", Napi::Function::New(env, ListCgroups));
  exports.Set("oomKills", Napi::Function::New(env, OomKills));
  exports.Set("start", Napi::Function::New(env, Start));
  exports.Set("startShim", Napi::Function::New(env, StartShim));
  exports.Set("pidfdSignal", Napi::Function::New(env, PidfdSignal));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  return exports;
}

} // namespace

NODE_API_MODULE(grove_native, Init)
