// expect: 16:32 `Jenkins` reaches the controller's internals
// expect: 17:27 `.metaClass` is metaprogramming
// expect: 18:29 `new File(…)` creates a Java object
// expect: 19:21 `evaluate(…)` is evaluating code
// expect: 20:21 unknown step or function `shh` (did you mean `sh`?)
// expect: 21:35 `.execute` is starting processes outside the steps
// expect: 24:21 class definitions are not part of the Groovy subset
// expect: 27:21 imports are not part of the Groovy subset
// expect: 28:21 annotations such as `@Grab`
pipeline {
    agent any
    stages {
        stage('Escape') {
            steps {
                script {
                    def jobs = Jenkins.instance.getAllItems()
                    String.metaClass.shout = { -> delegate.toUpperCase() }
                    def f = new File('/etc/passwd')
                    evaluate('1 + 1')
                    shh 'make'
                    def out = 'id'.execute().text
                }
                script {
                    class Helper { }
                }
                script {
                    import groovy.json.JsonSlurper
                    @Grab('org.example:lib:1.0')
                    def x = 1
                }
            }
        }
    }
}
